"""`streamseg model import`: a user's ONNX segmentation network → a streamseg model package.

surgery.py   LoRA A/B graph inputs of dynamic rank in chosen Conv/Gemm/MatMul layers, the class
             selection input, the embedder graph taken from the model's own features
torch_onnx.py  runs an ONNX graph with torch ops (so LoRA inputs can be trained by autograd)
"""


class ImportError_(Exception):
    """A problem with the user's model or options: `code` and a one-line message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
