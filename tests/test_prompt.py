"Prompt layout and SQL extraction (`reasonforge.prompt`) on hand-written answers and bad input; the notebook's lessons cover real Spider prompts."
import pytest

from reasonforge.prompt import SYSTEM_PROMPT, extract_sql, prompt_messages, user_message


def test_messages_put_schema_first_and_question_last():
    messages = prompt_messages("CREATE TABLE t (a int);", "How many rows?")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT and "SQLite" in SYSTEM_PROMPT
    assert messages[1]["content"] == "CREATE TABLE t (a int);\n\nQuestion: How many rows?\nSQL:"
    assert user_message(" CREATE TABLE t (a int); \n", " How many rows? ") == messages[1]["content"]


CASES = [
    ("SELECT count(*) FROM head WHERE age > 56;\n", "SELECT count(*) FROM head WHERE age > 56"),
    ("```sql\nSELECT name FROM head\n```", "SELECT name FROM head"),
    ("```SQL\nSELECT name FROM head;", "SELECT name FROM head"),
    ("Sure! Here's the SQL:\n```sql\nSELECT max(budget_in_billions) FROM department\n```\nLet me know.",
     "SELECT max(budget_in_billions) FROM department"),
    ("Answer: SELECT count(*) FROM department", "SELECT count(*) FROM department"),
    ("SELECT a FROM t; SELECT b FROM u;", "SELECT a FROM t"),
    ("INSERT INTO t VALUES (1); SELECT b FROM u", "SELECT b FROM u"),
    ("select name from head where born_state != 'California'", "select name from head where born_state != 'California'"),
    ("SELECT name FROM head WHERE name LIKE '%Ha;%'", "SELECT name FROM head WHERE name LIKE '%Ha;%'"),
    ("WITH x AS (SELECT 1 AS a) SELECT a FROM x", "WITH x AS (SELECT 1 AS a) SELECT a FROM x"),
    ("With this query:\nSELECT 2 FROM t", "SELECT 2 FROM t"),
    ("Use `SELECT count(*) FROM t` here.", "SELECT count(*) FROM t"),
    ("SELECT count(*)\nFROM t\n\nThis counts rows; it is simple.", "SELECT count(*)\nFROM t"),
    ("SELECT 1 FROM t<|im_end|>\n<|endoftext|>", "SELECT 1 FROM t"),
    ("No SQL can answer that.", ""),
    ("Please select a database first.", ""),
    ("```\n```", ""),
    ("", ""),
    ("   ", ""),
    ("```sql\n-- nothing to do\n```", ""),
    ("SELECT\n  name\nFROM\n  head;", "SELECT\n  name\nFROM\n  head"),
    ("1. Find the names.\n2. Query:\n```sql\nSELECT name FROM head ORDER BY age\n```", "SELECT name FROM head ORDER BY age"),
    ("SELECT * FROM [my;table]", "SELECT * FROM [my;table]"),
    ("SELECT 1 /* ; */ FROM t; SELECT 2", "SELECT 1 /* ; */ FROM t"),
    ("SELECT \"a;b\" FROM t", "SELECT \"a;b\" FROM t"),
    ("SQL query: SELECT count(*) FROM t;", "SELECT count(*) FROM t"),
    ("```sql\nSELECT 1 FROM a\n```\n```sql\nSELECT 2 FROM b\n```", "SELECT 1 FROM a"),
    ("\r\nSELECT x FROM y;\r\n", "SELECT x FROM y"),
    ("(SELECT a FROM t) EXCEPT (SELECT a FROM u)", "(SELECT a FROM t) EXCEPT (SELECT a FROM u)"),
    ("SELECT a FROM t INTERSECT SELECT a FROM u", "SELECT a FROM t INTERSECT SELECT a FROM u"),
]


@pytest.mark.parametrize("response,expected", CASES)
def test_extract_sql(response, expected):
    assert extract_sql(response) == expected


@pytest.mark.parametrize("bad", [None, 42, b"SELECT 1", ["SELECT 1"]])
def test_extract_sql_never_raises(bad):
    assert extract_sql(bad) == ""


def test_counting_a_prompt_longer_than_the_tokenizer_limit_is_silent():
    "`chat_token_counter` only counts: transformers' 'Token indices sequence length is longer' warning stays quiet."
    import logging
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from reasonforge.prompt import RESPONSE_PREFIX, chat_token_counter
    words = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, model_max_length=8)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    messages = prompt_messages("CREATE TABLE t (a int, b int, c int);", "How many rows are there in t?")
    records = []
    class Keep(logging.Handler):
        def emit(self, record): records.append(record.getMessage())
    keep = Keep()
    logging.getLogger("transformers").addHandler(keep)
    try: count = chat_token_counter(tokenizer)(messages)
    finally: logging.getLogger("transformers").removeHandler(keep)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + RESPONSE_PREFIX
    assert count == len(text.split()) > 8  # the same count, longer than the limit
    assert not [message for message in records if "Token indices" in message], records
