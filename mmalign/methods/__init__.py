"""Built-in method recipes."""
