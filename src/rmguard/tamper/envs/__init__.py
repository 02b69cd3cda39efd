"""The curriculum's environments, one module each; every module lists its environments in ``PROVIDES``.

The registry (:mod:`rmguard.tamper.envs.registry`) imports every other module here, so a new environment is
one new file. The base class is in :mod:`rmguard.tamper.envs.base`.
"""
