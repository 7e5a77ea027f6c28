"""Readers: encodings, malformed records (raise with file:line, or quarantine), columns, SQLite, Parquet."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from openautoglm import DataLoader
from openautoglm.adapters.sources.encoding import detect_encoding
from openautoglm.adapters.sources.specs import SqlSource
from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.errors import (
    ConfigurationError,
    DataSourceError,
    EncodingDetectionError,
    MalformedRecordError,
    MissingColumnsError,
)

ROWS = [("1", "物流很快，包装仔细", "正面"), ("2", "送餐太慢了", "负面"), ("3", "还行吧", "中性")]


def write_csv(path: Path, encoding: str, rows: list[tuple[str, ...]] = ROWS, bom: bool = False) -> Path:
    text = "id,text,label\n" + "".join(",".join(r) + "\n" for r in rows)
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


@pytest.mark.parametrize(
    ("encoding", "bom", "detected"),
    [
        ("utf-8", False, "utf-8"),
        ("utf-8", True, "utf-8-sig"),
        ("gbk", False, "gb18030"),
        ("gb18030", False, "gb18030"),
    ],
)
def test_csv_encodings_are_detected(tmp_path: Path, encoding: str, bom: bool, detected: str) -> None:
    path = write_csv(tmp_path / "f.csv", encoding, bom=bom)
    assert detect_encoding(path) == detected
    dataset = DataLoader.from_csv(path).load(columns=["text", "label"])
    assert dataset.frame["text"].tolist() == [r[1] for r in ROWS]
    assert dataset.columns == ["text", "label"]  # a BOM must not stick to the first header
    assert dataset.frame[ROW_ID].tolist() == [0, 1, 2]


def test_given_encoding_is_used(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "gbk")
    assert DataLoader.from_csv(path, encoding="gbk").load().frame["label"].tolist() == [
        "正面",
        "负面",
        "中性",
    ]


def test_wrong_encoding_names_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "gbk")
    with pytest.raises(MalformedRecordError) as info:
        DataLoader.from_csv(path, encoding="utf-8").load()
    assert f"{path}:2" in str(info.value)
    assert "not valid utf-8" in str(info.value)


def test_unknown_encoding_is_a_clear_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "utf-8")
    with pytest.raises(EncodingDetectionError, match="unknown encoding 'klingon'"):
        DataLoader.from_csv(path, encoding="klingon").load()


def test_malformed_csv_row_raises_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('id,text\n1,"好\n评"\n2,a,b\n3,ok\n', encoding="utf-8")
    with pytest.raises(MalformedRecordError) as info:
        DataLoader.from_csv(path).load()
    message = str(info.value)
    assert f"{path}:4: expected 2 fields (id, text), found 3" in message
    assert "on_error='quarantine'" in message


def test_malformed_csv_rows_go_to_quarantine_in_lenient_mode(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    good = "".join(f"{i},很好的商品，推荐购买\n" for i in range(6, 20))  # enough UTF-8 to detect it
    path.write_bytes('id,text\n1,"好\n评"\n2,a,b\n\n3,ok\n4,'.encode() + b"\xff\xfe" + f"\n5,\n{good}".encode())
    dataset = DataLoader.from_csv(path, on_error="quarantine").load()
    assert dataset.frame[ROW_ID].tolist()[:3] == [0, 2, 4]
    assert dataset.frame["text"].tolist()[:2] == ["好\n评", "ok"]
    assert pd.isna(dataset.frame["text"].iloc[2])  # an empty field is a missing value
    q = dataset.quarantine.set_index("row_id")
    assert q.loc[1, "rule"] == "wrong_field_count" and q.loc[1, "location"] == f"{path}:4"
    assert json.loads(q.loc[1, "record"]) == {"fields": ["2", "a", "b"]}
    assert q.loc[3, "rule"] == "undecodable" and q.loc[3, "location"] == f"{path}:7"
    assert json.loads(q.loc[3, "record"]) == {"id": "4", "text": "\\xff\\xfe"}
    assert dataset.rows_read == 19 == len(dataset) + len(dataset.quarantine)
    assert len(dataset.quarantine) == 2


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="no such file"):
        DataLoader.from_csv(tmp_path / "nope.csv").load()
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataSourceError, match="is empty"):
        DataLoader.from_csv(tmp_path / "empty.csv").load()


def test_missing_columns_name_the_available_ones(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "utf-8")
    with pytest.raises(MissingColumnsError) as info:
        DataLoader.from_csv(path).load(columns=["txt", "label"])
    assert "['txt'] not found; the source has ['id', 'text', 'label']" in str(info.value)
    assert "did you mean 'txt' -> 'text'" in str(info.value)


def test_rename_and_column_order(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "utf-8")
    dataset = DataLoader.from_csv(path).load(columns=["label", "text"], rename={"text": "review"})
    assert list(dataset.frame.columns) == [ROW_ID, "label", "review"]
    with pytest.raises(ConfigurationError, match="not loaded"):
        DataLoader.from_csv(path).load(columns=["text"], rename={"label": "y"})


def test_duplicate_header_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("text,text\na,b\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match="repeats"):
        DataLoader.from_csv(path).load()


def test_tsv_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "f.tsv"
    path.write_text("text\tlabel\na,b\tc\n", encoding="utf-8")
    assert DataLoader.from_path(path).load().frame["text"].tolist() == ["a,b"]


def test_jsonl_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    lines = ['{"text": "好", "label": "正面", "n": 1}', "", "{broken", "[1, 2]", '{"text": "差"}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(MalformedRecordError, match=rf"{path.name}:3: not JSON"):
        DataLoader.from_jsonl(path).load()
    dataset = DataLoader.from_jsonl(path, on_error="quarantine").load()
    assert dataset.columns == ["text", "label", "n"]
    assert dataset.frame["n"].tolist()[0] == "1"
    assert pd.isna(dataset.frame["label"].iloc[1])
    assert dataset.quarantine["rule"].tolist() == ["invalid_json", "not_an_object"]
    assert dataset.quarantine["location"].tolist() == [f"{path}:3", f"{path}:4"]
    assert dataset.frame[ROW_ID].tolist() == [0, 3]


def test_parquet_values_become_text(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    pd.DataFrame({"text": ["a", None], "label": [1, 0], "score": [0.5, 2.0]}).to_parquet(path)
    dataset = DataLoader.from_parquet(path).load(columns=["text", "label", "score"])
    assert dataset.frame["label"].tolist() == ["1", "0"]
    assert dataset.frame["score"].tolist() == ["0.5", "2"]
    assert pd.isna(dataset.frame["text"].iloc[1])
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(DataSourceError, match="not a readable Parquet"):
        DataLoader.from_parquet(tmp_path / "junk.parquet").load()


def test_sqlite_table_in_primary_key_order_and_query(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE fb (id INTEGER PRIMARY KEY, text TEXT, label TEXT, score REAL)")
        conn.executemany(
            "INSERT INTO fb VALUES (?, ?, ?, ?)",
            [(3, "c", "x", 1.0), (1, "a", "y", 0.25), (2, "b", None, None)],
        )
    url = f"sqlite:///{db}"
    dataset = DataLoader.from_sql(url, "fb").load(columns=["text", "label", "score"])
    assert dataset.frame["text"].tolist() == ["a", "b", "c"]
    assert dataset.frame["score"].tolist()[::2] == ["0.25", "1"]
    assert dataset.source == f"sqlite://{db} fb"
    queried = DataLoader.from_sql(url, "SELECT text FROM fb WHERE label IS NOT NULL ORDER BY id DESC;").load()
    assert queried.frame["text"].tolist() == ["c", "a"]
    with pytest.raises(DataSourceError, match=r"(?s)no table 'nope'.*\['fb'\]"):
        DataLoader.from_sql(url, "nope").load()
    with pytest.raises(DataSourceError, match="no such column"):
        DataLoader.from_sql(url, "SELECT missing_column FROM fb").load()


def test_sql_password_never_stays_in_the_spec() -> None:
    loader = DataLoader.from_sql("postgresql://me:s3cret@db.example:5432/prod", "feedback")
    assert "s3cret" not in loader.spec.model_dump_json()
    assert "s3cret" not in repr(loader)
    assert loader.spec.url.startswith("postgresql+psycopg://me@")  # bundled driver chosen
    with pytest.raises(ValueError, match="holds a password") as info:
        SqlSource(url="mysql://root:pw-42@127.0.0.1/test", query="t")
    assert "pw-42" not in str(info.value)


def test_unreachable_database_is_a_clear_error() -> None:
    from openautoglm.core.errors import SourceUnavailableError

    with pytest.raises(SourceUnavailableError, match="cannot reach the database"):
        DataLoader.from_sql("postgresql://nobody@127.0.0.1:1/none", "t").load()
