"""mmssl: self-supervised multimodal retrieval.

Contrastive losses, self-prediction pretext tasks, unimodal contrastive methods, CLIP-style and
CodeSearchNet-style dual encoders, FAISS indexes and a Gradio search app.
"""

__version__ = "0.1.0"
