"""The third-party plugin path, exercised for real with distributions on sys.path."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmalign import plugins
from mmalign.errors import PluginError, RegistryError

MINIMAL_PLUGIN = '''
import mmalign
import torch


class MyLoss(mmalign.Objective):
    """Mean of the logits (a third-party test loss)."""

    def forward(self, outputs, batch):
        return {"loss": outputs["logits"].mean()}


@mmalign.hookimpl
def mmalign_register(registry):
    registry.add("objective", "my-loss", MyLoss)
'''


def make_distribution(root: Path, module: str, source: str, dist: str | None = None,
                      version: str = "0.3.1") -> Path:
    """Write ``module.py`` plus a ``.dist-info`` with an ``mmalign`` entry point."""
    dist = dist or module.replace("_", "-")
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[mmalign]\n{module} = {module}\n")
    return root


@pytest.fixture
def site(tmp_path, monkeypatch, mmalign_home):
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    ours = ("my_plugin", "broken", "dup", "typo", "local_plugin", "undecorated", "renamed",
            "mmalign_raiser")
    for name in [m for m in sys.modules if m.startswith(ours)]:
        del sys.modules[name]


def test_minimal_third_party_plugin_registers_with_its_origin(site):
    make_distribution(site, "my_plugin", MINIMAL_PLUGIN)
    entry = plugins.get_registry().entry("objective", "my-loss")
    assert (entry.plugin, entry.distribution) == ("my_plugin", "my-plugin")
    assert entry.summary == "Mean of the logits (a third-party test loss)."
    loaded = {p.name: p for p in plugins.get_host().plugins}
    assert loaded["my_plugin"].version == "0.3.1"
    assert "builtin" in loaded  # built-ins go through the same entry-point path


def test_cli_lists_third_party_plugin(site):
    make_distribution(site, "my_plugin", MINIMAL_PLUGIN)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-m", "mmalign", "list", "objective", "--format",
                          "json"], capture_output=True, text=True, env=env, check=True)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["my-loss"]["plugin"] == "my_plugin"
    assert rows["my-loss"]["distribution"] == "my-plugin"
    plugins_out = subprocess.run([sys.executable, "-m", "mmalign", "plugins", "--format",
                                  "json"], capture_output=True, text=True, env=env, check=True)
    assert {"name": "my_plugin", "module": "my_plugin", "distribution": "my-plugin",
            "version": "0.3.1"} in json.loads(plugins_out.stdout)


def test_import_failure_names_plugin_and_how_to_block_it(site, monkeypatch):
    make_distribution(site, "broken", "import not_a_module_anywhere\n")
    with pytest.raises(PluginError) as exc:
        plugins.get_host()
    message = str(exc.value)
    assert "'broken'" in message and "ModuleNotFoundError" in message
    assert "MMALIGN_BLOCK_PLUGINS=broken" in message
    plugins.reset()
    monkeypatch.setenv("MMALIGN_BLOCK_PLUGINS", "broken")
    assert "broken" not in {p.name for p in plugins.get_host().plugins}


def test_two_plugins_registering_the_same_name(site):
    make_distribution(site, "my_plugin", MINIMAL_PLUGIN)
    make_distribution(site, "dup_plugin", MINIMAL_PLUGIN.replace("MyLoss", "Other"))
    with pytest.raises(Exception) as exc:
        plugins.get_host()
    assert "my_plugin" in str(exc.value) and "dup_plugin" in str(exc.value)


def test_misspelt_hook_fails_at_start_up(site):
    make_distribution(site, "typo_plugin", '''
        import mmalign

        @mmalign.hookimpl
        def mmalign_regster(registry):
            pass
    ''')
    with pytest.raises(PluginError, match="typo_plugin.*mmalign_regster"):
        plugins.get_host()


def test_unpackaged_plugin_module_from_environment(site, monkeypatch):
    (site / "local_plugin.py").write_text(MINIMAL_PLUGIN)
    monkeypatch.setenv("MMALIGN_PLUGINS", "local_plugin")
    entry = plugins.get_registry().entry("objective", "my-loss")
    assert (entry.plugin, entry.distribution) == ("local_plugin", "")
    plugins.reset()
    monkeypatch.setenv("MMALIGN_PLUGINS", "no_such_plugin_module")
    with pytest.raises(PluginError, match="no_such_plugin_module.*MMALIGN_PLUGINS"):
        plugins.get_host()


def test_hook_without_hookimpl_is_refused_not_silently_skipped(site):
    make_distribution(site, "undecorated_plugin", MINIMAL_PLUGIN.replace("@mmalign.hookimpl\n", ""))
    with pytest.raises(PluginError, match="'undecorated_plugin' defines mmalign_register "
                                          "without @mmalign.hookimpl"):
        plugins.get_host()


def test_hookimpl_with_specname_runs(site):
    source = MINIMAL_PLUGIN.replace(
        "@mmalign.hookimpl\ndef mmalign_register(registry):",
        "@mmalign.hookimpl(specname='mmalign_register')\ndef add_everything(registry):")
    make_distribution(site, "renamed_plugin", source)
    entry = plugins.get_registry().entry("objective", "my-loss")
    assert entry.plugin == "renamed_plugin"


@pytest.mark.parametrize("raised", ["ValueError('bad width')",
                                    "mmalign.errors.ConfigError('bad width')"])
def test_errors_of_a_plugin_named_mmalign_something_name_the_plugin(site, raised):
    make_distribution(site, "mmalign_raiser", f'''
        import mmalign
        import mmalign.errors

        @mmalign.hookimpl
        def mmalign_register(registry):
            raise {raised}
    ''', dist="mmalign-raiser")
    with pytest.raises(PluginError, match="Plugin 'mmalign_raiser' failed while registering: "
                                          ".*bad width.*MMALIGN_BLOCK_PLUGINS=mmalign_raiser"):
        plugins.get_host()


def test_core_errors_during_registration_pass_through_with_the_plugin_named(site):
    make_distribution(site, "dup_kind", '''
        import mmalign

        @mmalign.hookimpl
        def mmalign_register(registry):
            registry.add("fusion", "not-a-fusion", dict)
    ''')
    with pytest.raises(RegistryError, match="fusion 'not-a-fusion' \\(plugin dup_kind\\) "
                                            "must be a subclass of mmalign.Fusion"):
        plugins.get_host()
