"""The shared command-line options of the experiment commands (fg_analysis.runs.cli): one-line errors."""

from __future__ import annotations

import pytest

from fg_analysis.runs import cli


def parse(*argv: str):
    parser = cli.experiment_parser("rq9", "a test command", presets=("quick", "paper"))
    return parser, parser.parse_args(list(argv))


def test_the_shared_options_and_their_defaults():
    _, args = parse()
    assert (args.preset, args.device, args.seed, args.threads, args.publish, args.no_progress) == \
        ("quick", "cpu", 0, 1, False, False)
    _, args = parse("--preset", "paper", "--seed", "3", "--threads", "2", "--publish")
    assert (args.preset, args.seed, args.threads, args.publish) == ("paper", 3, 2, True)


@pytest.mark.parametrize(("argv", "message"), [
    (("--threads", "0"), "--threads: must be a positive integer; got '0'"),
    (("--threads", "x"), "--threads: must be a positive integer; got 'x'"),
    (("--preset", "huge"), "--preset: invalid choice: 'huge'"),
])
def test_bad_options_are_one_line_with_exit_status_2(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        parse(*argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_bad_device_is_one_line_from_resolve_common(capsys):
    parser, args = parse("--device", "tpu")
    with pytest.raises(SystemExit) as stop:
        cli.resolve_common(parser, args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "--device: unknown device 'tpu'" in err and len(err.strip().splitlines()) == 1


def test_run_main_turns_a_bad_setting_into_one_line(capsys):
    def main(argv):
        raise ValueError("no such grid")

    assert cli.run_main(main, []) == 2
    assert capsys.readouterr().err == "error: no such grid\n"
