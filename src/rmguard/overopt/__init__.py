"""Over-optimization: sampling a policy, gold rewards, Best-of-N, RLOO and the demo study."""
