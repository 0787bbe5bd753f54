"""Node discovery v5.1 wire layer: packets, messages, crypto and the sans-I/O session state machine."""
