"""``beenet completion bash``: a bash completion script (zsh: load it after ``bashcompinit``).

It completes the command names, each command's options and sub-commands (read from the same
parsers that ``--help`` prints, so it cannot drift), the choices of options that have them, and
file names everywhere else. Install::

    beenet completion bash > ~/.local/share/bash-completion/completions/beenet   # bash
    autoload -U bashcompinit && bashcompinit && source <(beenet completion bash)  # zsh
"""

from __future__ import annotations

import argparse
import importlib
import shlex

from beenet.cli import COMMANDS, VERBOSITY_FLAGS


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shell", choices=("bash",), help="the shell to complete in (zsh: through bashcompinit)")
    return p


def _words(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    """The option strings and sub-command names of a parser (recursively), and the choices of
    each option that has them."""
    words: list[str] = []
    choices: dict[str, list[str]] = {}
    for action in parser._actions:  # argparse keeps no public list of its actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.append(name)
                sub_words, sub_choices = _words(sub)
                words += sub_words
                choices.update(sub_choices)
            continue
        words += list(action.option_strings)
        if action.option_strings and action.choices:
            for opt in action.option_strings:
                choices[opt] = [str(c) for c in action.choices]
    return sorted(set(words)), choices


def bash_script() -> str:
    cases, choice_cases = [], []
    for name, (module, _) in COMMANDS.items():
        words, choices = _words(importlib.import_module(module).build_parser(f"beenet {name}"))
        opts = [w for w in words if w.startswith("-")] + list(VERBOSITY_FLAGS)
        subs = [w for w in words if not w.startswith("-")]
        cases.append(f"    {name}) opts={shlex.quote(' '.join(opts))}; subs={shlex.quote(' '.join(subs))} ;;")
        for opt, values in choices.items():
            choice_cases.append(f"    {name}:{opt}) COMPREPLY=($(compgen -W {shlex.quote(' '.join(values))} "
                                '-- "$cur")); return ;;')
    top = " ".join([*COMMANDS, "--help", "--version", *VERBOSITY_FLAGS])
    return "\n".join([
        "# bash completion for beenet (made by 'beenet completion bash')",
        "_beenet() {",
        '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" opts="" i',
        "  for ((i = 1; i < COMP_CWORD; i++)); do",
        '    case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break ;; esac',
        "  done",
        '  if [ -z "$cmd" ]; then COMPREPLY=($(compgen -W ' + shlex.quote(top) + ' -- "$cur")); return; fi',
        '  case "$cmd:$prev" in',
        *choice_cases,
        "  esac",
        '  case "$cmd" in',
        *cases,
        "  esac",
        '  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur"));',
        '  else COMPREPLY=($(compgen -W "$subs" -- "$cur") $(compgen -f -- "$cur")); fi',
        "}",
        "complete -o filenames -o bashdefault -F _beenet beenet",
        "",
    ])


def run(args: argparse.Namespace) -> int:
    print(bash_script(), end="")
    return 0
