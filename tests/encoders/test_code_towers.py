"""Code-tower specifics: padding never changes a sequence's features; the masked biRNN equals the
packed-sequence reference; pooling looks only at real tokens."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmssl.encoders import TOWERS, build_tower, takes_code_tokenizer
from mmssl.encoders.code import SequencePooling


# every tower over the code tokenizer with every pooling; MiniLM and the CLIP text tower pool their own way
CODE_TOKEN_TOWERS = sorted(name for name in TOWERS if takes_code_tokenizer(name))
PADDING_CASES = [(name, pooling) for name in CODE_TOKEN_TOWERS for pooling in ("mean", "max", "attention")]
PADDING_CASES += [("minilm", "mean"), ("clip-text-tiny", "mean")]


@pytest.mark.parametrize(("name", "pooling"), PADDING_CASES)
def test_padding_does_not_change_features(name, pooling, code_tokenizer, stdlib_pairs):
    kwargs = {"tokenizer": code_tokenizer, "pooling": pooling} if takes_code_tokenizer(name) else {}
    tower = build_tower(name, pretrained="minilm" if name == "minilm" else "scratch", **kwargs).eval()
    short, long = stdlib_pairs[0][0], stdlib_pairs[3][1]  # a docstring and a whole function
    alone = tower.encode([short])
    padded = tower.encode([short, long])[:1]  # short is now padded to the long one's length
    assert torch.allclose(alone, padded, atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_birnn_equals_packed_reference(cell, code_tokenizer, stdlib_pairs):
    tower = build_tower(f"bi{cell}", tokenizer=code_tokenizer, width=32, layers=2, dropout=0.0).eval()
    reference = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](32, 16, num_layers=2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for layer in range(2):
            for direction, rnn in (("", tower.forward_rnns[layer]), ("_reverse", tower.backward_rnns[layer])):
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(reference, f"{kind}_l{layer}{direction}").copy_(getattr(rnn, f"{kind}_l0"))
    inputs = tower.tokenize([code for _, code in stdlib_pairs[:6]])
    mask = inputs["attention_mask"]
    tokens = tower.embedding(inputs["input_ids"])  # (B, L, D)
    with torch.no_grad():
        ours = tower.contextualise(tokens, mask)
        packed = pack_padded_sequence(tokens, mask.sum(1), batch_first=True, enforce_sorted=False)
        expected, _ = pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=tokens.shape[1])
    real = mask.bool()
    assert torch.allclose(ours[real], expected[real], atol=1e-5)


def test_pooling_values():
    tokens = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2); the last is padding
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(SequencePooling("mean", 2)(tokens, mask), torch.tensor([[2.0, 1.0]]))
    assert torch.equal(SequencePooling("max", 2)(tokens, mask), torch.tensor([[3.0, 4.0]]))
    attention = SequencePooling("attention", 2)
    with torch.no_grad():
        attention.score.weight.zero_()  # equal scores: the mean of the real tokens
    assert torch.allclose(attention(tokens, mask), torch.tensor([[2.0, 1.0]]))
