"""Image inputs: classification, fetching under an address policy, bounded decoding."""
