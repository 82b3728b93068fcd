"""One vocabulary for the kinds of things mmssl names, each with its own word, and the maps between them.

"kind" alone meant five things; here each has a name of its own. The string values are the ones
already stored on disk (model folders, index manifests, checkpoints, results JSON), so every file
written before stays readable.

* **model kind** (:attr:`mmssl.model.RetrievalModel.kind`): what a model searches;
* **item kind** (``IndexManifest.kind``): what an index holds;
* **tower modality** (``Tower.modality``): what a tower encodes; **tower input** (``Tower.reads``):
  how it takes that input apart;
* **run task** (``DualEncoderRun.task``): what a dual-encoder recipe trains; the CLI spells it
  ``train clip|code``, and ``eval --task image|code`` (the **eval task**, also in results JSON);
* **checkpoint kind** (``state.json`` and safetensors metadata ``kind``, a model folder's
  ``config.json`` ``kind``): who wrote a checkpoint, so a loader can refuse another's.
"""

from __future__ import annotations

# model kinds
MODEL_IMAGE_TEXT = "image-text"  # text queries and images
MODEL_CODE = "code"  # natural-language queries and code
MODEL_KINDS = (MODEL_IMAGE_TEXT, MODEL_CODE)

# item kinds
ITEM_IMAGE = "image"
ITEM_CODE = "code"
ITEM_KINDS = (ITEM_IMAGE, ITEM_CODE)

# tower modalities: an image, or a token sequence of any text (captions, queries, code)
MODALITY_IMAGE = "image"
MODALITY_TEXT = "text"

# tower inputs (Tower.reads): the registry gives the code tokenizer to CODE_TOKENS towers only
IMAGES = "images"  # PIL images, any size or mode
TEXT = "text"  # strings, through the tower's own tokenizer (CLIP BPE, MiniLM WordPiece)
CODE_TOKENS = "code-tokens"  # strings, through the code tokenizer trained by train_code_tokenizer
BYTES = "bytes"  # strings as UTF-8 bytes: no tokenizer at all
TOWER_INPUTS = (IMAGES, TEXT, CODE_TOKENS, BYTES)

# run tasks: a recipe trains a model of the kind of the same name
TASK_IMAGE_TEXT = MODEL_IMAGE_TEXT
TASK_CODE = MODEL_CODE
TASKS = (TASK_IMAGE_TEXT, TASK_CODE)

# checkpoint kinds
DUAL_ENCODER_CHECKPOINT = "dual_encoder"  # a model folder written by save_dual_encoder
UNNAMED_CHECKPOINT = "mmssl"  # a Trainer run that names no kind


def dual_encoder_run_checkpoint(task: str) -> str:
    """Checkpoint kind of a dual-encoder recipe run: ``dual_encoder/image-text``, ``dual_encoder/code``."""
    return f"{DUAL_ENCODER_CHECKPOINT}/{task}"


def pretext_run_checkpoint(method: str) -> str:
    """Checkpoint kind of a pretext run: ``pretext/rotation``, ..."""
    return f"pretext/{method}"


def contrastive_run_checkpoint(method: str) -> str:
    """Checkpoint kind of a contrastive run: ``contrastive/simclr``, ..."""
    return f"contrastive/{method}"


# eval tasks: the CLI's `eval --task` and the "task" of evaluation results (models/*/manifest.json)
EVAL_IMAGE = "image"
EVAL_CODE = "code"

# maps
EVAL_TASKS = {EVAL_IMAGE: TASK_IMAGE_TEXT, EVAL_CODE: TASK_CODE}  # eval task -> run task
TRAIN_RECIPES = {"clip": TASK_IMAGE_TEXT, "code": TASK_CODE}  # CLI `train RECIPE` -> run task
ITEM_KIND_OF_MODEL = {MODEL_IMAGE_TEXT: ITEM_IMAGE, MODEL_CODE: ITEM_CODE}
MODEL_KIND_OF_ITEM = {item: model for model, item in ITEM_KIND_OF_MODEL.items()}
MODEL_ENCODES = {MODEL_IMAGE_TEXT: ("text", "image"), MODEL_CODE: ("text", "code")}  # `embed --modality` values


def model_kind_of_item_modality(modality: str) -> str:
    """The kind of a dual encoder whose item tower has ``modality``: images make an image-text model."""
    return MODEL_IMAGE_TEXT if modality == MODALITY_IMAGE else MODEL_CODE


def eval_task_of(task: str) -> str:
    """The eval task of a run task: ``image-text`` -> ``image``, ``code`` -> ``code``."""
    return {run_task: word for word, run_task in EVAL_TASKS.items()}[task]
