"""The embedded demo study: a gold world, the pipeline and its report."""
