"""Every knowledge format in, and bad files refused with file, line and problem."""

import pytest

from services.knowledge.datasets import knowledge_from_examples, load_dataset
from services.knowledge.formats import KnowledgeFormatError, load_knowledge
from tests.knowledge.conftest import BITEXT, CLINC


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_demo_knowledge_base_loads():
    kb = load_knowledge("services/knowledge/demo/shop.yaml")
    assert len(kb.entries) >= 25
    assert kb.get("legal_threat").escalate
    assert "out_of_scope" in kb.get("out_of_scope").tags


def test_intents_in_yaml_and_json(tmp_path):
    yaml_kb = load_knowledge(
        write(
            tmp_path,
            "kb.yaml",
            """
intents:
  - name: hours
    questions: ["When are you open?", opening hours]
    answer: 9 to 5.
    tags: [contact]
  - name: close_account
    examples: [delete my account]
    answer: A person will help.
    escalate: true
    url: https://x.example/close
""",
        )
    )
    assert [e.id for e in yaml_kb.entries] == ["hours", "close_account"]
    assert (
        yaml_kb.get("close_account").escalate
        and yaml_kb.get("close_account").url == "https://x.example/close"
    )
    json_kb = load_knowledge(
        write(
            tmp_path, "kb.json", '{"intents": [{"name": "a", "questions": ["q"], "answer": "x"}]}'
        )
    )
    assert json_kb.get("a").questions == ("q",)


def test_faq_csv_rows_sharing_an_answer_become_one_entry(tmp_path):
    kb = load_knowledge(
        write(
            tmp_path,
            "faq.csv",
            'question,answer\nDo you sell socks?,"Yes, all sizes."\nAny socks?,"Yes, all sizes."\nPhone?,Call us.\n',
        )
    )
    assert len(kb.entries) == 2 and kb.entries[0].questions == ("Do you sell socks?", "Any socks?")
    assert {e.kind for e in kb.entries} == {"faq"}


def test_articles_split_into_passages_with_title_anchor_and_url(tmp_path):
    folder = tmp_path / "help"
    folder.mkdir()
    write(
        folder,
        "shipping.md",
        "url: https://acme.example/help/shipping\n# Shipping\n\n## Lockers\nParcels can go to lockers.\n\n## Packaging\nRecycled boxes.\n",
    )
    write(
        folder,
        "returns.html",
        '<html><head><link rel="canonical" href="https://acme.example/returns"></head>'
        "<body><h2>Free returns</h2><p>Returns are free for 30 days.</p><script>x()</script></body></html>",
    )
    kb = load_knowledge(folder)
    by_id = {e.id: e for e in kb.entries}
    assert by_id["shipping#lockers"].url == "https://acme.example/help/shipping#lockers"
    assert by_id["shipping#lockers"].answer == "Parcels can go to lockers."
    assert by_id["returns#free-returns"].answer == "Returns are free for 30 days."
    assert all(e.kind == "passage" for e in kb.entries)


def test_public_datasets_load():
    clinc = load_dataset(CLINC)
    assert len(clinc.split("train")) == 15000 and len(clinc.split("oos_val")) == 100
    kb = knowledge_from_examples(clinc.split("train", "oos_train"))
    assert len(kb.entries) == 151 and "out_of_scope" in kb.get("oos").tags
    bitext = load_dataset(BITEXT)
    assert len(bitext.split("train")) > 4000 and bitext.answers["cancel_order"]


@pytest.mark.parametrize(
    ("name", "text", "problem", "line"),
    [
        (
            "bad.yaml",
            "intents:\n  - name: a\n    questions: [x]\n    answer: [unclosed\n",
            "invalid YAML",
            5,
        ),
        (
            "bad.yaml",
            "intents:\n  - name: a\n    questions: [x]\n    answer: ok\n  - name: a\n    questions: [y]\n    answer: ok\n",
            "appears twice",
            5,
        ),
        (
            "bad.yaml",
            "intents:\n  - name: a\n    questions: [x]\n  - name: b\n",
            "has no answer",
            2,
        ),
        ("bad.yaml", "just: text\n", "`intents` list", None),
        ("bad.json", '{"intents": [', "invalid JSON", 1),
        ("bad.csv", "q,a\nx,y\n", "header `question,answer`", 1),
        ("bad.csv", "question,answer\nonly a question\n", "needs a question and an answer", 2),
        ("bad.txt", "hello", "unsupported file type", None),
    ],
)
def test_bad_files_name_the_file_line_and_problem(tmp_path, name, text, problem, line):
    path = write(tmp_path, name, text)
    with pytest.raises(KnowledgeFormatError) as err:
        load_knowledge(path)
    assert problem in str(err.value) and str(path) in str(err.value)
    assert err.value.line == line


def test_public_datasets_are_recognised_by_their_shape(tmp_path):
    splits = write(
        tmp_path,
        "intents.json",
        '{"train": [["hi there", "greet"], ["bye now", "bye"], '
        '["what is love", "oos"]], "val": [["hello", "greet"]]}',
    )
    kb = load_knowledge(splits)
    assert {e.id for e in kb.entries} == {"greet", "bye", "oos"} and kb.get("greet").questions == (
        "hi there",
    )
    assert "out_of_scope" in kb.get("oos").tags
    labelled = load_knowledge(BITEXT)
    assert len(labelled.entries) == 27 and labelled.get("cancel_order").answer.startswith(
        "I understand"
    )


@pytest.mark.parametrize(
    ("name", "text", "problem", "line"),
    [
        (
            "bad.json",
            '{"train": [["text only"]]}',
            "split 'train', row 1: expected [text, label]",
            None,
        ),
        ("bad.json", '{"train": [["a", " "]]}', "row 1: expected [text, label]", None),
        ("bad.csv", "text,label\nhello,greet\n,greet\n", "empty text or label", 3),
        ("bad.csv", 'text,label\nhello,greet\n"unclosed,greet\n', "missing columns", 3),
    ],
)
def test_bad_dataset_files_name_the_file_line_and_problem(tmp_path, name, text, problem, line):
    path = write(tmp_path, name, text)
    with pytest.raises(KnowledgeFormatError) as err:
        load_knowledge(path)
    assert problem in str(err.value) and str(path) in str(err.value)
    assert err.value.line == line


def test_the_import_check_reads_validates_and_changes_nothing(tmp_path):
    import json
    import subprocess
    import sys

    def check(path):
        return subprocess.run(
            [sys.executable, "-m", "services.knowledge.importer", str(path), "--check"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = check(
        write(tmp_path, "faq.csv", "question,answer\nDo you sell socks?,Yes.\nAny hats?,No.\n")
    )
    assert done.returncode == 0 and json.loads(done.stdout) == {"ok": True, "entries": 2}
    done = check(write(tmp_path, "one.csv", "question,answer\nDo you sell socks?,Yes.\n"))
    assert done.returncode == 2 and "at least two entries" in done.stderr
    done = check(write(tmp_path, "broken.yaml", "intents:\n  - name: a\n    questions: [x\n"))
    assert done.returncode == 2 and "broken.yaml, line" in done.stderr


def test_article_anchors_follow_the_page_and_long_sections_are_split(tmp_path):
    sentence = "Parcels wait at the locker for seven days before they come back to us. "
    write(
        tmp_path,
        "lockers.md",
        "url: https://acme.example/lockers\n## Overview\nFirst.\n## Overview\nSecond.\n"
        "## Pick-up {#pickup}\n" + sentence * 60 + "\n",
    )
    write(
        tmp_path,
        "faq.html",
        '<link rel="canonical" href="https://acme.example/faq">'
        '<h2 id="q-7">Can I pay later?</h2><p>Yes, with Klarna.</p>',
    )
    kb = load_knowledge(tmp_path)
    ids = [e.id for e in kb.entries]
    assert ids[:3] == ["faq#q-7", "lockers#overview", "lockers#overview-1"]
    assert (
        kb.get("faq#q-7").url == "https://acme.example/faq#q-7"
        and kb.get("faq#q-7").title == "Can I pay later?"
    )
    pickup = [e for e in kb.entries if e.id.startswith("lockers#pickup")]
    assert len(pickup) == 3 and [e.id for e in pickup][1:] == [
        "lockers#pickup~2",
        "lockers#pickup~3",
    ]
    assert all(
        e.url == "https://acme.example/lockers#pickup" and len(e.answer) <= 1500 for e in pickup
    )
    assert "".join(e.answer for e in pickup).replace(" ", "") == (sentence * 60).replace(" ", "")
