"""The whole network: a fusion (the cross-sample fusion by default), then a head on
its pooled vector (the prediction MLP of equation 17)."""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from mmalign.interfaces import Batch, Fusion, Head, Outputs, StrictModel
from mmalign_tecafn.fusion import CrossSampleFusion

#: batch key under which the objective hands the step's generator to the gates
GENERATOR_KEY = "tecafn_generator"
#: the output key holding what the TeCaFN losses read (contrast embeddings, pair logits)
AUX_KEY = "tecafn"


class PredictionHeadConfig(StrictModel):
    hidden: int = Field(128, ge=1, description="width of the prediction MLP (d_prjh)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    output_scale: float = Field(3.0, gt=0.0, description="ŷ = scale·tanh(·): the label range")


class PredictionHead(Head):
    """``z_s`` → tanh MLP (the authors' sum-fusion head) → FC; with one output (a
    score) ``ŷ = scale · tanh(FC(·))`` so that it spans the label range, with more
    (classes) the FC output are the logits. Returns ``[B, out_dim]``."""

    Config = PredictionHeadConfig

    def __init__(self, config: PredictionHeadConfig | None, *, in_dim: int, out_dim: int) -> None:
        super().__init__(config, in_dim=in_dim, out_dim=out_dim)
        cfg: PredictionHeadConfig = self.config
        hidden = cfg.hidden
        self.mlp = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(in_dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 2 * hidden),
            nn.Tanh(),
            nn.Dropout(cfg.dropout),
            nn.Linear(2 * hidden, hidden),
            nn.Tanh(),
        )
        self.fc = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        out = self.fc(self.mlp(x))
        return self.config.output_scale * out.tanh() if self.out_dim == 1 else out


class TeCaFNModel(nn.Module):
    """Returns ``prediction`` (regression) or ``logits`` (classification), and under
    ``tecafn`` what the TeCaFN losses need when the fusion is the cross-sample one
    (``embeddings`` when the fusion exposes them).

    ``encoders`` holds the encoders that run inside the model (not cached: the
    fine-tuned BERT of the paper); their modalities arrive as preprocessed inputs.
    """

    def __init__(
        self,
        fusion: Fusion,
        head: Head,
        encoders: dict[str, nn.Module] | None = None,
        regression: bool = True,
    ) -> None:
        super().__init__()
        self.fusion = fusion
        self.head = head
        self.encoders = nn.ModuleDict(encoders or {})
        self.regression = regression

    def forward(self, batch: Batch) -> Outputs:
        features = {
            m: self.encoders[m](batch[m]["inputs"]) if m in self.encoders else batch[m]
            for m in self.fusion.modalities
        }
        if isinstance(self.fusion, CrossSampleFusion):
            fused = self.fusion(features, batch.get(GENERATOR_KEY))
        else:
            fused = self.fusion(features)
        out = self.head(fused.pooled)
        outputs: Outputs = {"prediction": out.squeeze(-1)} if self.regression else {"logits": out}
        if AUX_KEY in fused.extras:
            outputs[AUX_KEY] = fused.extras[AUX_KEY]
        if fused.embeddings is not None:
            outputs["embeddings"] = fused.embeddings
        return outputs
