"""The SPP-SCL network against an independent re-computation of the authors' forward
pass, written step by step from their ``model/Model.py`` and ``model/Bert.py``
(github.com/TomorrowJW/SPP-SCL) with plain tensor operations on the plugin's weights:

* text: the [CLS] states of BERT layers 9-12 averaged over channels, two bias-free
  4×4 layers with a ReLU between and a sigmoid, the layer-weighted sum of the word
  states ``[1:-1]``, a bias-free BiLSTM(64) run sequence-first, the mean over time;
* image: a 1×1 convolution on the 2048-channel map, 2-D batch norm, ReLU, global
  average pooling;
* each side: ``EncodingPart`` (Linear, BN, ReLU, Dropout, Linear, BN) then ``Align``
  (Linear, BN, ReLU, Dropout) to ``T_p``/``I_p``;
* CMF across the batch: ``softmax((T_p ⊙ Q_I(I_p))(T_p ⊙ K_I(I_p))ᵀ/√32) V_I(I_p)``
  and the same with the roles swapped, concatenated as the authors do,
  ``[T_m, I_m, I_p, T_p]``, then ``Linear(128, 64)``, BN, ReLU, Dropout and the head.

The plugin concatenates in the paper's order ``[I_m, T_m, I_p, T_p]``; the check
permutes the classifier's input columns accordingly, so a swapped fusion order, a
missing layer, a softmax for the sigmoid or a wrong guide in the attention all fail.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmalign_sppscl.model import SPPSCLModel
from torch import Tensor

B, L, C_TEXT, C_IMAGE, HW = 6, 9, 24, 40, 3
D = 32


def _bn(x: Tensor, bn: torch.nn.BatchNorm1d | torch.nn.BatchNorm2d, train: bool) -> Tensor:
    return F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias,
                        training=train, eps=bn.eps)


def _linear(x: Tensor, layer: torch.nn.Linear) -> Tensor:
    return x @ layer.weight.T + (layer.bias if layer.bias is not None else 0)


def _encoding_then_align(x: Tensor, head: torch.nn.Sequential, train: bool) -> Tensor:
    """The authors' ``EncodingPart_*`` (6 layers) then ``Align_*`` (4 layers), dropout 0."""
    lin1, bn1, _, _, lin2, bn2, lin3, bn3, _, _ = head
    x = F.relu(_bn(_linear(x, lin1), bn1, train))
    x = _bn(_linear(x, lin2), bn2, train)
    return F.relu(_bn(_linear(x, lin3), bn3, train))


def authors_forward(model: SPPSCLModel, image_map: Tensor, hidden: list[Tensor],
                    train: bool) -> dict[str, Tensor]:
    """``image_map [B, 2048-like, H, W]``; ``hidden``: BERT's 13 hidden states [B, L, C]."""
    # text: Bert_Model → Attention (HA) → FastLSTM → mean over time → T_Contra → T_Align
    cls = torch.cat([hidden[i][:, 0, :].unsqueeze(1) for i in (9, 10, 11, 12)], dim=1)
    words = torch.cat([hidden[i][:, 1:-1, :].unsqueeze(1) for i in (9, 10, 11, 12)], dim=1)
    fc1, _, fc2, _ = model.text.attention.fc
    y = cls.mean(-1)  # AdaptiveAvgPool1d(1) over channels
    y = torch.sigmoid(F.relu(y @ fc1.weight.T) @ fc2.weight.T)
    out = (y[:, :, None, None] * words).sum(1)
    lstm = torch.nn.LSTM(C_TEXT, model.text.lstm.hidden_size, bias=False, bidirectional=True)
    lstm.load_state_dict(model.text.lstm.state_dict())
    seq, _ = lstm(out.permute(1, 0, 2))  # the authors' batch_first=False
    t_l = seq.permute(1, 0, 2).mean(1)
    t_p = _encoding_then_align(t_l, model.text.project, train)

    # image: Conv_I = Conv2d 1×1 → BatchNorm2d → ReLU → Dropout → AdaptiveAvgPool2d(1)
    conv = model.image.conv
    weight = conv.weight[:, :, None, None]
    x = F.conv2d(image_map, weight, conv.bias)
    x = F.relu(_bn(x, model.image.norm, train))
    i_l = x.mean(dim=(2, 3))
    i_p = _encoding_then_align(i_l, model.image.project, train)

    # CMF: image-guided text attention and text-guided image attention, across the batch
    img_att, txt_att = model.fusion.image_attention, model.fusion.text_attention
    i_q, i_k, i_v = (_linear(i_p, m[0]) for m in (img_att.q, img_att.k, img_att.v))
    value_t_i = torch.softmax((t_p * i_q) @ (t_p * i_k).T * D**-0.5, dim=-1) @ i_v
    t_q, t_k, t_v = (_linear(t_p, m[0]) for m in (txt_att.q, txt_att.k, txt_att.v))
    value_i_t = torch.softmax((i_p * t_q) @ (i_p * t_k).T * D**-0.5, dim=-1) @ t_v
    fusion = torch.cat((value_i_t, value_t_i, i_p, t_p), 1)  # the authors' [T_m, I_m, ...]

    lin, bn, _, _ = model.classifier
    # the plugin's columns are [I_m, T_m, I_p, T_p]: the same layer with T_m/I_m swapped
    w = torch.cat([lin.weight[:, D:2 * D], lin.weight[:, :D], lin.weight[:, 2 * D:]], dim=1)
    cl_out = F.relu(_bn(fusion @ w.T + lin.bias, bn, train))
    return {"logits": _linear(cl_out, model.head), "fused": cl_out, "text": t_p, "image": i_p}


def _randomise_norms(model: SPPSCLModel, g: torch.Generator) -> None:
    """Batch-norm affine parameters and running statistics away from their defaults."""
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = module.num_features
            module.weight.data = 1 + 0.3 * torch.randn(n, generator=g)
            module.bias.data = 0.2 * torch.randn(n, generator=g)
            module.running_mean.data = 0.5 * torch.randn(n, generator=g)
            module.running_var.data = 0.5 + torch.rand(n, generator=g)


def _inputs(seed: int = 0) -> tuple[Tensor, list[Tensor], dict]:
    g = torch.Generator().manual_seed(seed)
    image_map = torch.randn(B, C_IMAGE, HW, HW, generator=g).relu()  # a post-ReLU CNN map
    hidden = [torch.randn(B, L, C_TEXT, generator=g) for _ in range(13)]
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[2, 6:] = False  # the authors' heads never read the mask: padding is computed on
    batch = {
        "image": {"tokens": image_map.flatten(2).transpose(1, 2),
                  "mask": torch.ones(B, HW * HW, dtype=torch.bool)},
        "text": {"layers": torch.stack(hidden[9:13], dim=1), "tokens": hidden[12],
                 "mask": mask},
    }
    return image_map, hidden, batch


@pytest.fixture
def model() -> SPPSCLModel:
    torch.manual_seed(0)
    net = SPPSCLModel(image_dim=C_IMAGE, text_dim=C_TEXT, num_classes=3, dim=D,
                      dropout=0.0, mask_padding=False, special_tokens=True)
    _randomise_norms(net, torch.Generator().manual_seed(1))
    return net


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_forward_matches_the_authors_model(model, train):
    image_map, hidden, batch = _inputs()
    model.train(train)
    expected = authors_forward(model, image_map, hidden, train)
    out = model(batch)
    atol = 1e-5 if train else 1e-6
    torch.testing.assert_close(out["embeddings"]["text"], expected["text"], rtol=0, atol=atol)
    torch.testing.assert_close(out["embeddings"]["image"], expected["image"], rtol=0, atol=atol)
    torch.testing.assert_close(out["fused"], expected["fused"], rtol=0, atol=atol)
    torch.testing.assert_close(out["logits"], expected["logits"], rtol=0, atol=atol)
