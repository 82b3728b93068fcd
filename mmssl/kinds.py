"""One vocabulary for the words the code would otherwise spell ad hoc.

What a tower reads (``Tower.reads``, so the registry knows which towers take the code tokenizer):
"""

IMAGES = "images"  # PIL images, any size or mode
TEXT = "text"  # strings, through the tower's own tokenizer (CLIP BPE, MiniLM WordPiece)
CODE_TOKENS = "code-tokens"  # strings, through the code tokenizer trained by train_code_tokenizer
BYTES = "bytes"  # strings as UTF-8 bytes: no tokenizer at all
TOWER_INPUTS = (IMAGES, TEXT, CODE_TOKENS, BYTES)
