"""keepalived.conf's grammar as keepalived 2.2.7's lib/parser.c reads it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vrrp_agent.keepalived.reader import Node, boolean, command_words, read


def write(tmp_path: Path, text: str, name: str = "keepalived.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def shape(nodes: list[Node]) -> list:
    """The tree as nested lists: [keyword, *args] or [keyword, *args, [children]]."""
    out: list = []
    for n in nodes:
        item: list = [n.keyword, *n.args]
        if n.children is not None:
            item.append(shape(n.children))
        out.append(item)
    return out


def parsed(tmp_path: Path, text: str, config_id: str = "n1") -> tuple[list, list[str]]:
    nodes, messages = read(write(tmp_path, text), config_id)
    return shape(nodes), [str(m) for m in messages]


def test_blocks_nested_on_one_line_and_with_the_brace_on_its_own_line(tmp_path: Path) -> None:
    tree, msgs = parsed(
        tmp_path,
        "vrrp_instance VI_1 {\n"
        "\tvirtual_ipaddress { 10.0.0.1/24 dev eth0 label eth0:1 }\n"
        "   track_interface\n"
        "   {\n"
        "      eth1 weight 10\n"
        "   }\n"
        "}  vrrp_instance VI_2 { priority 5 }\n",
    )
    assert msgs == []
    assert tree == [
        [
            "vrrp_instance",
            "VI_1",
            [
                ["virtual_ipaddress", [["10.0.0.1/24", "dev", "eth0", "label", "eth0:1"]]],
                ["track_interface", [["eth1", "weight", "10"]]],
            ],
        ],
        ["vrrp_instance", "VI_2", [["priority", "5"]]],
    ]


def test_comments_anywhere_unless_double_quoted(tmp_path: Path) -> None:
    tree, _ = parsed(
        tmp_path,
        "! a comment\n"
        "global_defs { # trailing\n"
        "  router_id r1 ! also a comment\n"
        '  notification_email_from "a#b!c@example.org"\n'
        "  smtp_helo_name x\\#y\n"
        "}\n",
    )
    assert tree == [
        [
            "global_defs",
            [
                ["router_id", "r1"],
                ["notification_email_from", "a#b!c@example.org"],
                ["smtp_helo_name", "x#y"],
            ],  # fmt: skip
        ]
    ]


def test_single_quotes_do_not_protect_a_comment_as_in_keepalived(tmp_path: Path) -> None:
    # decomment() knows only double quotes: keepalived cuts this line at '#'.
    tree, _ = parsed(tmp_path, "notify_master '/bin/echo #x'\n")
    assert tree == [["notify_master", "'/bin/echo"]]


def test_double_quoted_braces_do_not_split(tmp_path: Path) -> None:
    tree, _ = parsed(tmp_path, 'vrrp_script s { script "/bin/test -f /x{y}" }\n')
    assert tree == [["vrrp_script", "s", [["script", "/bin/test -f /x{y}"]]]]


def test_command_words_split_again_with_single_quotes_and_escapes(tmp_path: Path) -> None:
    nodes, _ = read(
        write(tmp_path, "script \"/bin/sh -c 'exit 1' a\\tb\"\nnotify /bin/n x\n"), "n1"
    )
    # The first split turns \\t into a tab, the second splits at it: keepalived's argv.
    assert command_words(nodes[0]) == ["/bin/sh", "-c", "exit 1", "a", "b"]
    assert command_words(nodes[1]) == ["/bin/n"]  # keepalived runs the first word only


def test_unmatched_quote_is_an_error_on_its_line(tmp_path: Path) -> None:
    _, msgs = parsed(tmp_path, 'global_defs {\n  router_id "r1\n}\n')
    assert any(m.startswith(f"{tmp_path}/keepalived.conf:2: error: unmatched quote") for m in msgs)


def test_include_globs_relative_to_the_including_file_with_their_own_names(
    tmp_path: Path,
) -> None:
    write(tmp_path, "global_defs {\n  router_id b\n}\n", "etc/conf.d/20-b.conf")
    write(tmp_path, "\n\nvrrp_script s {\n  interval 2\n}\n", "etc/conf.d/10-a.conf")
    write(tmp_path, "include sub/*.conf\n", "etc/conf.d/30-c.conf")
    write(tmp_path, "vrrp_track_file f {\n  file /x\n}\n", "etc/conf.d/sub/x.conf")
    main = write(tmp_path, "# top\ninclude conf.d/*.conf\nvrrp_instance V { }\n", "etc/k.conf")
    nodes, msgs = read(main, "n1")
    assert msgs == []
    assert [n.keyword for n in nodes] == [
        "vrrp_script", "global_defs", "vrrp_track_file", "vrrp_instance",
    ]  # fmt: skip
    assert str(nodes[0].where) == f"{tmp_path}/etc/conf.d/10-a.conf:3"
    assert str(nodes[0].children[0].where) == f"{tmp_path}/etc/conf.d/10-a.conf:4"
    assert str(nodes[2].where) == f"{tmp_path}/etc/conf.d/sub/x.conf:1"
    assert str(nodes[3].where) == f"{tmp_path}/etc/k.conf:3"


def test_include_of_a_missing_file_is_refused_an_empty_glob_warned(tmp_path: Path) -> None:
    _, msgs = parsed(tmp_path, "include nothere.conf\ninclude none/*.conf\n")
    f = f"{tmp_path}/keepalived.conf"
    assert msgs[0].startswith(f"{f}:1: error: include nothere.conf:")
    assert msgs[1].startswith(f"{f}:2: warning: include none/*.conf: no file matches")


def test_an_include_loop_is_refused_not_followed(tmp_path: Path) -> None:
    _, msgs = parsed(tmp_path, "global_defs {\n}\ninclude keepalived.conf\n")
    assert len(msgs) == 1 and "more than 32 files deep" in msgs[0]


@pytest.mark.parametrize(
    ("config_id", "kept"),
    [("node1", ["priority", "150"]), ("node2", ["priority", "100"])],
)
def test_conditional_lines(tmp_path: Path, config_id: str, kept: list[str]) -> None:
    tree, _ = parsed(
        tmp_path,
        "vrrp_instance V {\n@node1 priority 150\n@^node1\tpriority 100\n@node1\n}\n",
        config_id,
    )
    assert tree == [["vrrp_instance", "V", [kept]]]


def test_the_default_config_id_is_the_short_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "lb1.example.org")
    nodes, _ = read(write(tmp_path, "@lb1 router_id a\n@lb1.example.org router_id b\n"))
    assert shape(nodes) == [["router_id", "a"]]


def test_parameters_single_and_multi_line_and_braced(tmp_path: Path) -> None:
    tree, msgs = parsed(
        tmp_path,
        "$IF=eth0\n"
        "$VIPS=10.0.0.1/24 \\\n"
        "    10.0.0.2/24 dev $IF\\\n"
        "\n"
        "$PRIO = 10\n"
        "vrrp_instance V {\n"
        "  interface ${IF}\n"
        "  priority 1${PRIO}\n"
        "  virtual_ipaddress {\n"
        "    $VIPS\n"
        "  }\n"
        "  unknown $NOPE\n"
        "}\n",
    )
    assert msgs == []
    assert tree == [
        [
            "vrrp_instance",
            "V",
            [
                ["interface", "eth0"],
                ["priority", "110"],
                ["virtual_ipaddress", [["10.0.0.1/24"], ["10.0.0.2/24", "dev", "eth0"]]],
                ["unknown", "$NOPE"],
            ],
        ]
    ]


def test_a_multi_line_parameter_may_hold_a_whole_block(tmp_path: Path) -> None:
    tree, _ = parsed(
        tmp_path,
        "$INST=vrrp_instance ${NAME} { \\\n"
        "  virtual_router_id ${ID} \\\n"
        "}\n"
        "$NAME=A\n$ID=1\n$INST\n"
        "$NAME=B\n$ID=2\n$INST\n",
    )
    assert tree == [
        ["vrrp_instance", "A", [["virtual_router_id", "1"]]],
        ["vrrp_instance", "B", [["virtual_router_id", "2"]]],
    ]


def test_predefined_parameters(tmp_path: Path) -> None:
    tree, _ = parsed(tmp_path, 'a ${_INSTANCE}\nb ${_PWD}\nc "${_HASH}"\n', "lb7")
    assert tree == [["a", "lb7"], ["b", str(tmp_path)], ["c", "#"]]
    _, msgs = parsed(tmp_path, "priority ${_RANDOM 1 10}\n")
    assert len(msgs) == 1 and "_RANDOM" in msgs[0] and ":1: error:" in msgs[0]


def test_seq_and_lst(tmp_path: Path) -> None:
    tree, msgs = parsed(
        tmp_path,
        "virtual_ipaddress {\n"
        "~SEQ(n, 3)  10.0.0.${n}/24\n"
        "~SEQ(n, 1)  10.9.0.$n/24\n"  # $n then '/': not a parameter to keepalived
        "~SEQ(n, 10, -5, 0) 10.1.0.${n}/24\n"
        "~SEQx(n, 9, 11) fd00::${n}/64\n"
        "~LST(h, a, b) 10.2.0.1/24 label eth0:$h\n"
        "~LST({x, y}, {1, 2}, {3}) 10.3.${x}.${y}/24\n"
        "}\n",
    )
    assert msgs == []
    assert [item[0] for item in tree[0][1]] == [
        "10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/24", "10.9.0.$n/24",
        "10.1.0.10/24", "10.1.0.5/24", "10.1.0.0/24",
        "fd00::9/64", "fd00::a/64", "fd00::b/64",
        "10.2.0.1/24", "10.2.0.1/24",
        "10.3.1.2/24", "10.3.3./24",
    ]  # fmt: skip
    assert tree[0][1][11] == ["10.2.0.1/24", "label", "eth0:b"]


def test_bad_seq_and_brace_errors_name_their_lines(tmp_path: Path) -> None:
    _, msgs = parsed(tmp_path, "~SEQ(n, 1, -1, 5) x\n}\nvrrp_instance V {\n  priority 1\n")
    f = f"{tmp_path}/keepalived.conf"
    assert msgs == [
        f"{f}:1: error: invalid ~SEQ specification '~SEQ(n, 1, -1, 5) x'",
        f"{f}:2: error: extra '}}' (keepalived reports it too)",
        f"{f}:3: error: vrrp_instance: the block opened here is never closed",
    ]


def test_a_huge_seq_is_refused_within_bounds(tmp_path: Path) -> None:
    _, msgs = parsed(tmp_path, "~SEQ(n, 1, 100000000) x $n\n")
    assert len(msgs) == 1 and "at most" in msgs[0]


def test_a_self_referencing_parameter_is_refused(tmp_path: Path) -> None:
    _, msgs = parsed(tmp_path, "$A=x $A\ny $A\n")
    assert len(msgs) == 1 and "does not end" in msgs[0] and ":2: error:" in msgs[0]
    # A multi-line one whose own lines name it: each expansion yields another.
    _, msgs = parsed(tmp_path, "$B=a \\\n$B\n$B\n")
    assert len(msgs) == 1 and "does not end" in msgs[0] and ":3: error:" in msgs[0]


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("on", True),
        ("Yes", True),
        ("true", True),
        ("off", False),
        ("no", False),
        ("FALSE", False),
        ("2", None),
        (None, True),
    ],  # fmt: skip
)
def test_booleans(word: str | None, value: bool | None) -> None:
    from vrrp_agent.keepalived.reader import Where

    node = Node("vrrp_strict", [word] if word else [], None, Where("f", 1))
    assert boolean(node) is value


def test_unreadable_and_binary_input_never_raises(tmp_path: Path) -> None:
    nodes, msgs = read(tmp_path / "missing.conf", "n1")
    assert nodes == [] and "cannot read" in str(msgs[0])
    rnd = random.Random(14)
    alphabet = "{}\"'#!$@~\\ \t\nabc01(),;=SEQLST\x00\xff"
    for i in range(300):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 200)))
        path = tmp_path / f"fuzz{i}.conf"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        read(path, "n1")  # may complain; must not raise
