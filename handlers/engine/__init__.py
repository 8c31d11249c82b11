"""Models: loading (Infinity, ONNX, CTranslate2), tokenizers, schedulers, backend."""
