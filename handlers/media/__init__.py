"""Image and audio inputs: classification, fetching under an address policy, bounded decoding."""
