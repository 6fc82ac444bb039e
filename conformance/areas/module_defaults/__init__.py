"""Layer defaults (Linear, Conv, Embedding, norms): ``spec`` holds what each framework documents for a freshly
built module."""
