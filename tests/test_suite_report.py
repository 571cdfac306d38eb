"""`mmalign suite report` with several references (premise and control groups), the
premise/control contrast table, and the README block writer, on a fabricated store
whose numbers are checked against scipy.stats."""

from dataclasses import replace

import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from mmalign.cli import app
from mmalign.errors import ConfigError
from mmalign.results import ResultsStore
from mmalign.runner.run import resolve
from mmalign.suite import launch, readme, spec
from mmalign.suite.report import write_report

cli = CliRunner()
SUITE = """
methods = ["late-fusion"]
tasks = ["toy-pairs"]
seeds = [0, 1, 2, 3]

[defaults.encoders.a]
name = "toy-vector"
config = { seed = 0 }

[defaults.encoders.b]
name = "toy-vector"
config = { seed = 1 }

[variants.premise]
task.noise = 0.5

[variants.premise-drop]
task.noise = 0.5
dropout = 0.3

[variants.premise-wide]
task.noise = 0.5
dropout = 0.5

[variants.control]
task.noise = 2.0

[variants.control-drop]
task.noise = 2.0
dropout = 0.3
"""
REPORT = """
[report]
against = ["late-fusion:premise", "late-fusion:control"]

[report.pairs]
premise = ["premise-drop", "premise-wide"]
control = ["control-drop"]

[report.contrast]
"dropout 0.3" = ["premise-drop", "control-drop"]
"""
#: test accuracy per variant and seed; premise-drop also has a seed the reference lacks
ACC = {
    "premise": [0.80, 0.82, 0.79, 0.85],
    "premise-drop": [0.70, 0.75, 0.71, 0.72, 0.99],
    "premise-wide": [0.81, 0.80, 0.80, 0.84],
    "control": [0.60, 0.62, 0.58, 0.61],
    "control-drop": [0.61, 0.60, 0.59, 0.62],
}



def _suite_file(tmp_path, report=REPORT):
    (tmp_path / ".git").mkdir(exist_ok=True)  # a repository root: paths shown from here
    path = tmp_path / "benchmarks" / "toy" / "pc.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SUITE + report)
    return path


def _fabricate(suite):
    """One completed run per cell with the resolved config a real run records, and
    the accuracies above (mae = 1 - acc, a lower-is-better metric)."""
    store = ResultsStore()
    planner = launch.Planner(suite)
    for cell in spec.expand(suite):
        req = planner.request(cell)
        values = ACC[cell.variant]
        seeds = [cell.seed] + ([9] if cell.seed == 3 and len(values) == 5 else [])
        for seed in seeds:
            _, run_cfg, _ = resolve(replace(req, seed=seed))
            acc = values[4] if seed == 9 else values[cell.seed]
            run_id = f"{cell.variant}-{seed}"
            store.start(run_id, method=cell.method, task=cell.task, size=run_cfg.size,
                        seed=seed, config_hash="h", config=run_cfg.model_dump(mode="json"))
            store.update(run_id, status="completed",
                         metrics={"test": {"acc": acc, "mae": 1 - acc}})


def _rows(md, heading):
    """The cells of every table row (header left out) in the section under ``heading``;
    a variant cell is cut to the suite's variant name (the overrides follow a " · ")."""
    section = md.split(heading, 1)[1].split("\n#", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")]
            for line in section.splitlines() if line.startswith("| ")][1:]
    for cells in rows:
        cells[1] = cells[1].split(" · ")[0]
    return rows


def _expected(row, ref):
    """scipy's paired difference row - ref on shared seeds: mean, 95% CI, p."""
    a, b = ACC[row][:4], ACC[ref][:4]
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    mean = sum(diffs) / len(diffs)
    low, high = sps.t.interval(0.95, len(diffs) - 1, loc=mean, scale=sps.sem(diffs))
    return mean, (low, high), sps.ttest_rel(a, b).pvalue


def test_several_references_pair_each_group_and_contrast_the_settings(toy_env, tmp_path):
    path = _suite_file(tmp_path)
    suite = spec.load(path)
    _fabricate(suite)
    md = write_report(suite, tmp_path / "rep").read_text()

    # labels keep what sets a variant apart; what every row sets is said once
    assert "Every row also sets `encoders.a.config.seed=0`, `encoders.a.name=toy-vector`" in md
    assert "| late-fusion | premise-drop · dropout=0.3, task.noise=0.5 | 5 |" in md
    premise = _rows(md, "### Against `premise`")
    control = _rows(md, "### Against `control`")
    assert {(r[1], r[2]) for r in premise} == {("premise-drop", "acc"), ("premise-drop", "mae"),
                                               ("premise-wide", "acc"), ("premise-wide", "mae")}
    assert {(r[1], r[2]) for r in control} == {("control-drop", "acc"), ("control-drop", "mae")}
    for rows, ref in ((premise, "premise"), (control, "control")):
        for cells in (r for r in rows if r[2] == "acc"):
            mean, ci, p = _expected(cells[1], ref)
            assert cells[3] == "4"  # seed 9 of premise-drop is not shared: left out
            assert cells[4] == f"{mean:+.4f}"
            assert cells[5] == f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"
            assert cells[6] == f"{p:.3g}"
            assert cells[7] == ("distinguishable (p < 0.05)" if p < 0.05
                                else "not distinguishable")
    # the leaderboard's delta column names each row's own reference
    board = {r[1]: r for r in _rows(md, "### toy-pairs")}
    mean, ci, p = _expected("control-drop", "control")
    assert board["control-drop"][-2] == (f"{mean:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}] (n=4) "
                                         "vs control")
    assert board["control"][-2] == board["premise"][-2] == "reference"
    assert board["premise-drop"][2] == "5"

    # contrast: reference minus ablation in each setting, side by side
    (acc_row, mae_row) = _rows(md, "## The mechanism in each setting")
    assert acc_row[:2] == ["dropout 0.3 (premise-drop, control-drop)", "acc ↑"]
    assert len(acc_row) == 7
    for setting, cells in (("premise", acc_row[2:4]), ("control", acc_row[4:6])):
        mean, ci, p = _expected(setting, f"{setting}-drop")
        assert cells[0] == f"{mean:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}] (n=4)"
        assert cells[1].split()[0] == f"{p:.3g}"
    p_premise = _expected("premise", "premise-drop")[2]
    p_control = _expected("control", "control-drop")[2]
    assert p_premise < 0.05 < p_control  # the fabricated numbers mean what the test says
    assert acc_row[6] == "premise: helps; control: no difference shown"
    # mae is lower-is-better: the reference's lower mae is still read as a gain
    assert mae_row[1] == "mae ↓" and mae_row[6] == acc_row[6]
    assert mae_row[2].startswith(f"{-_expected('premise', 'premise-drop')[0]:+.4f}")
    # no number anywhere compares the control rows with the premise reference
    cross = _expected("control-drop", "premise")[0]
    assert f"{cross:+.4f}" not in md


def test_pairs_rules_are_checked_when_the_file_is_read(tmp_path):
    def load(report):
        return spec.load(_suite_file(tmp_path, report))

    assert load('[report]\nagainst = "late-fusion:premise"\n').pairs == {}  # as before
    with pytest.raises(ConfigError, match=r"several references, so \[report.pairs\] must"):
        load('[report]\nagainst = ["late-fusion:premise", "late-fusion:control"]\n')
    with pytest.raises(ConfigError, match="variant 'premise-wide' is in no report.pairs group"):
        load(REPORT.replace(', "premise-wide"]', "]"))
    with pytest.raises(ConfigError, match="'control-drop' is in report.pairs.premise and "
                                          "report.pairs.control"):
        load(REPORT.replace('"premise-wide"]', '"premise-wide", "control-drop"]'))
    with pytest.raises(ConfigError, match="'report.contrast.dropout 0.3' names 'premise-wide' "
                                          "for 'control'"):
        load(REPORT.replace('"premise-drop", "control-drop"]', '"premise-drop", "premise-wide"]'))
    with pytest.raises(ConfigError, match="'late-fusion:nope' must name one of the suite's"):
        load(REPORT.replace('"late-fusion:control"]', '"late-fusion:nope"]'))
    with pytest.raises(ConfigError, match="unknown key 'report.pair'. Did you mean 'pairs'"):
        load(REPORT.replace("[report.pairs]", "[report.pair]"))


README = """# toy plugin

## Results

What is measured: the gain of dropout.

<!-- mmalign suite report benchmarks/toy/other.toml: begin -->
### Suite `other`
<!-- mmalign suite report benchmarks/toy/other.toml: end -->

<!-- mmalign suite report benchmarks/toy/pc.toml: begin -->
an old hand-typed table | 0.99 |
<!-- mmalign suite report benchmarks/toy/pc.toml: end -->

## Tests

```bash
# not a heading
```
"""


def test_readme_block_is_replaced_and_nothing_else(toy_env, tmp_path):
    path = _suite_file(tmp_path)
    _fabricate(spec.load(path))
    doc = tmp_path / "plugins" / "toy" / "README.md"
    doc.parent.mkdir(parents=True)
    doc.write_text(README)
    out = tmp_path / "benchmarks" / "toy" / "results" / "pc"
    res = cli.invoke(app, ["suite", "report", str(path), "--out", str(out), "--readme", str(doc)])
    assert res.exit_code == 0, res.output
    text = doc.read_text()
    begin, end = readme.markers(path)
    head, rest = text.split(begin + "\n")
    block, tail = rest.split(end)
    assert head == README.split(begin)[0] and tail == README.split(end)[1]
    assert "0.99 |" not in block
    command = ("mmalign suite report benchmarks/toy/pc.toml --out benchmarks/toy/results/pc "
               "--readme plugins/toy/README.md")
    assert f"Generated by `{command}` from the results store." in block
    # headings moved below the block's "## Results" (another suite's block above does
    # not count); images relative to the README
    assert block.startswith("### Suite `pc`") and "\n#### Leaderboard\n" in block
    assert "![toy-pairs acc](../../benchmarks/toy/results/pc/toy-pairs-acc.png)" in block
    assert (out / "toy-pairs-acc.png").exists()
    # the same numbers as the report itself; regenerating gives the same file
    assert "### Against `premise`" in (out / "report.md").read_text()
    res = cli.invoke(app, ["suite", "report", str(path), "--out", str(out), "--readme", str(doc)])
    assert res.exit_code == 0 and doc.read_text() == text


def test_missing_marker_is_a_one_line_error_before_any_work(toy_env, tmp_path):
    path = _suite_file(tmp_path)
    doc = tmp_path / "README.md"
    broken = README.replace("<!-- mmalign suite report benchmarks/toy/pc.toml: end -->", "")
    doc.write_text(broken)
    out = tmp_path / "rep"
    res = cli.invoke(app, ["suite", "report", str(path), "--out", str(out), "--readme", str(doc)])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pc.toml: end -->' is missing" in lines[0]
    assert not out.exists() and doc.read_text() == broken
    twice = README.replace("## Tests", "<!-- mmalign suite report benchmarks/toy/pc.toml: "
                                       "begin -->\n## Tests")
    doc.write_text(twice)
    with pytest.raises(ConfigError, match="begin -->' appears 2 times"):
        readme.check(doc, path)
    assert doc.read_text() == twice  # left untouched


def test_every_plugin_readme_block_names_a_suite_and_its_command():
    """Each plugin README has its premise/control suite's block, and every block names
    a suite file that loads and the command that regenerates exactly that block."""
    import re
    from pathlib import Path

    root = Path(__file__).parents[1]
    found = {}
    for doc in sorted(root.glob("plugins/*/README.md")):
        text = doc.read_text()
        for key in re.findall(r"<!-- mmalign suite report (\S+): begin -->", text):
            spec.load(root / key)  # the suite file exists and is valid
            block = text.split(f"{key}: begin -->", 1)[1].split(f"{key}: end -->", 1)[0]
            out = f"{Path(key).parent.as_posix()}/results/{Path(key).stem}"
            command = (f"mmalign suite report {key} --out {out} "
                       f"--readme {doc.relative_to(root).as_posix()}")
            assert f"Generated by `{command}`" in block, (doc, key)
            assert command.replace("mmalign suite report ", "") in " ".join(
                (root / key).read_text().replace("\\\n#        ", "").split())
            found.setdefault(doc.parent.name, []).append(Path(key).name)
    assert {p for p, keys in found.items() if "premise_control.toml" in keys} == {
        "sppscl", "tecafn", "infonce", "tijepa"}


def test_the_report_states_the_steps_cells_recorded_not_only_the_budget() -> None:
    from mmalign.suite.report import recorded_steps

    def run(status: str, steps: int | None) -> dict:
        stage = {} if steps is None else {"optimizer_steps": steps}
        return {"status": status, "extra": {"provenance": {"stages": {"train": stage}}}}

    assert recorded_steps([run("completed", 156), run("completed", 156)], "train").endswith(
        "(train stage): 156.")
    assert recorded_steps([run("completed", 150), run("completed", 160),
                           run("failed", 3)], "train").endswith(": 150–160.")
    assert recorded_steps([run("failed", 3), run("completed", None)], "train") == (
        "No completed cell recorded its optimizer steps.")
