"""mmssl: self-supervised multimodal retrieval.

Contrastive losses, self-prediction pretext tasks, unimodal contrastive methods, CLIP-style and
CodeSearchNet-style dual encoders, FAISS indexes and a Gradio search app.
"""

from mmssl._version import __version__

__all__ = ["RetrievalModel", "__version__", "load_model"]


def __getattr__(name: str):
    # lazy: `import mmssl` stays cheap (no torch) until a model is actually asked for
    if name in ("load_model", "RetrievalModel"):
        from mmssl import model

        return getattr(model, name)
    raise AttributeError(f"module 'mmssl' has no attribute {name!r}")
