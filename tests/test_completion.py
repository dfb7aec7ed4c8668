"""Shell completion as a user installs it (issue 24): `harness completion bash` sourced in a real
bash registers a completion for `harness` whose function offers `promote` for `harness pro`;
`harness completion zsh` is a valid zsh script; any other shell is refused in one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
HARNESS = f"{sys.executable} -m harness"


def _bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=90, cwd=ROOT
    )


def _complete(words: str) -> list[str]:
    """What the generated bash function offers for the last of `words` (COMP_WORDS/COMP_CWORD
    set as bash sets them on TAB)."""
    done = _bash(
        f"""source <({HARNESS} completion bash) || exit 9
        line='{words}'; read -ra COMP_WORDS <<< "$line"
        [[ "$line" == *' ' ]] && COMP_WORDS+=('')
        COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_LINE="$line"; COMP_POINT=${{#line}}
        fn=$(complete -p harness | sed -E 's/.* -F ([^ ]+) .*/\\1/')
        "$fn" harness "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
        printf '%s\\n' "${{COMPREPLY[@]}}" """
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_bash_script_registers_a_completion_for_harness() -> None:
    done = _bash(f"source <({HARNESS} completion bash); complete -p harness")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("complete ") and done.stdout.rstrip().endswith(" harness")


def test_bash_completes_commands_options_and_choices() -> None:
    assert _complete("harness pro") == ["promote"]
    assert "completion" in _complete("harness ")
    assert "--log-level" in _complete("harness run --log")
    assert sorted(_complete("harness completion ")) == ["bash", "zsh"]


def test_the_zsh_script_is_valid_zsh(tmp_path: Path) -> None:
    zsh = shutil.which("zsh")
    assert zsh, "zsh is not installed (Debian: apt-get install zsh)"
    script = tmp_path / "_harness"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "completion", "zsh"],
        capture_output=True, text=True, timeout=90, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#compdef harness") and "promote" in done.stdout
    script.write_text(done.stdout)
    checked = subprocess.run([zsh, "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def test_another_shell_is_refused_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "completion", "fish"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "argument SHELL: invalid choice: 'fish'" in done.stderr
    assert "Traceback" not in done.stderr
