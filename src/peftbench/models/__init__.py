"""Loading a base model: built-in aliases, the hub, local folders and GGUF files, and 4/8-bit quantization."""
