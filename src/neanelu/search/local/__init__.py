"""The local provider: all-MiniLM-L6-v2 from a package, run on onnxruntime."""
