"""Classical image codecs for codecbench; each format is its own module and entry point."""
