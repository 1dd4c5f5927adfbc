#!/usr/bin/python3
"""Writes the golden files for io.sftnative.eval (jieba segmentation, BLEU-4, ROUGE-1/2/L).

Run with Debian's python3 and its packages python3-jieba (0.42.1) and python3-nltk (3.8):
    apt-get install python3-jieba python3-nltk
    /usr/bin/python3 tools/golden/gen_metrics_golden.py [../shared]

Outputs src/test/resources/golden/eval/{jieba,similarity}.json.

BLEU is nltk's own sentence_bleu with SmoothingFunction().method3, and segmentation is jieba's own cut. rouge-chinese
(the package LLaMA-Factory uses) is not packaged for Debian and PyPI is unreachable here, so `rouge_f` below
re-states its scoring from its source (rouge_chinese 1.0.3: Rouge.get_scores with the default exclusive=True):
sentences cut at Chinese/ASCII end punctuation, n-grams as sets over the flattened words, ROUGE-L as the plain LCS
of the flattened word lists, f = 2*p*r/(p+r+1e-8).

Texts from ../shared are not copied into the golden file: it stores their indices and the expected results only.
"""
import json
import logging
import os
import re
import sys

import jieba
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

jieba.setLogLevel(logging.CRITICAL)
jieba.initialize()

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "test", "resources", "golden", "eval")

HAND_TEXTS = [
    "我爱北京天安门",
    "今天天气很好，我们去公园散步吧！",
    "Hello World, this is a Test.",
    "我们使用Python和Java编写代码123个",
    "小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
    "  前导空格 和 多个   空格",
    "全角ＡＢＣ１２３和半角abc",
    "他说：“你好。”然后走了。",
    "价格是3.5%，数量12.5万",
    "E-mail: foo_bar@example.com #tag",
    "这是一个测试。这是第二句！第三句？",
    "人工智能（AI）正在改变世界……真的吗？",
    "第一行\r\n第二行\n第三行\t制表符",
    "表情😀符号🚀也要处理",
    "吉林省长春市的吉林大学",
    "c++和c#都是编程语言，AT&T是公司",
    "他来到了网易杭研大厦",
    "工信处女干事每月经过下属科室都要亲口交代24口交换机等技术性器件的安装工作",
    "结婚的和尚未结婚的",
    "",
    "   ",
    "1990年代的ＩＢＭ电脑",
]

# (prediction, reference) pairs written for these tests
HAND_PAIRS = [
    ("今天天气很好", "今天天气很好"),
    ("今天天气不错", "今天天气很好"),
    ("我爱北京天安门", "天安门上太阳升"),
    ("", "参考答案"),
    ("预测", ""),
    ("   ", "参考"),
    ("a", "a"),
    ("ab", "abc"),
    ("The cat sat on the mat.", "The cat is on the mat."),
    ("人工智能正在改变世界。它影响了每一个行业！", "人工智能改变了世界。每个行业都受到了影响。"),
    ("完全不同的内容", "毫无关系的句子"),
    ("重复重复重复重复", "重复"),
    ("机器学习是人工智能的一个分支，它使计算机能够从数据中学习。", "机器学习是人工智能的分支，让计算机从数据中学习规律。"),
    ("他说：“你好。”然后走了。", "他说：“再见。”然后离开了。"),
    ("价格是3.5%，数量12.5万", "价格为3.5%，数量是十二万五千"),
    ("Hello world", "hello World"),
    ("好。 好。 好", "好好好"),
    ("表情😀符号", "表情😀"),
]


def lf_similarity(pred, label):
    """LLaMA-Factory's ComputeSimilarity for one example (unrounded and rounded scores)."""
    hypothesis = list(jieba.cut(pred))
    reference = list(jieba.cut(label))
    if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
        raw = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    else:
        raw = rouge_f(" ".join(hypothesis), " ".join(reference))
    raw["bleu-4"] = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)
    rounded = {k: round(v * 100, 4) for k, v in raw.items()}
    return raw, rounded


# ---- rouge-chinese's scoring, re-stated (see module docstring) ----
def _cut_sent(para):
    para = re.sub("([。！？\\?])([^”’])", r"\1\n\2", para)
    para = re.sub("(\\.{6})([^”’])", r"\1\n\2", para)
    para = re.sub("(\\…{2})([^”’])", r"\1\n\2", para)
    para = re.sub("([。！？\\?][”’])([^，。！？\\?])", r"\1\n\2", para)
    return para.rstrip().split("\n")


def _sentences(text):
    return [" ".join(piece.split()) for piece in _cut_sent(text) if len(piece) > 0]


def _words(sentences):
    words = []
    for s in sentences:
        words.extend(s.split(" "))
    return words


def _ngram_set(n, words):
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _f(p, r):
    return 2.0 * ((p * r) / (p + r + 1e-8))


def _rouge_n(n, hyp, ref):
    h, r = _ngram_set(n, _words(hyp)), _ngram_set(n, _words(ref))
    overlap = len(h & r)
    p = 0.0 if len(h) == 0 else overlap / len(h)
    rc = 0.0 if len(r) == 0 else overlap / len(r)
    return _f(p, rc)


def _lcs(x, y):
    prev = [0] * (len(y) + 1)
    for i in range(1, len(x) + 1):
        cur = [0] * (len(y) + 1)
        for j in range(1, len(y) + 1):
            cur[j] = prev[j - 1] + 1 if x[i - 1] == y[j - 1] else max(prev[j], cur[j - 1])
        prev = cur
    return prev[len(y)]


def rouge_f(hyp_text, ref_text):
    hyp, ref = _sentences(hyp_text), _sentences(ref_text)
    ref_words, hyp_words = _words(ref), _words(hyp)
    llcs = _lcs(ref_words, hyp_words)
    r, p = llcs / len(ref_words), llcs / len(hyp_words)
    return {"rouge-1": _rouge_n(1, hyp, ref), "rouge-2": _rouge_n(2, hyp, ref), "rouge-l": _f(p, r)}


def cp_len(s):
    return len(s)  # Python str length counts code points, like Java's codePointCount


def shared_pairs(outputs):
    """Deterministic partial-overlap pairs: prediction = first half of text i + second half of text i+1."""
    pairs = []
    for i in range(len(outputs)):
        a, b = outputs[i], outputs[(i + 1) % len(outputs)]
        pairs.append((a[: len(a) // 2] + b[len(b) // 2:], a))
    return pairs


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")
    demo = os.path.join(shared, "data", "llamafactory-demo")
    os.makedirs(OUT, exist_ok=True)

    jieba_golden = {"jieba_version": jieba.__version__,
                    "hand": [{"text": t, "tokens": list(jieba.cut(t))} for t in HAND_TEXTS],
                    "shared": []}
    sim_golden = {"hand": [], "shared": []}
    for pred, label in HAND_PAIRS:
        raw, rounded = lf_similarity(pred, label)
        sim_golden["hand"].append({"pred": pred, "label": label, "raw": raw, "rounded": rounded})

    for name, count in (("alpaca_zh_demo.json", 300), ("alpaca_en_demo.json", 60)):
        with open(os.path.join(demo, name), encoding="utf-8") as f:
            rows = json.load(f)[:count]
        for i, row in enumerate(rows):
            for field in ("instruction", "output"):
                tokens = list(jieba.cut(row[field]))
                jieba_golden["shared"].append({"file": name, "index": i, "field": field,
                                               "token_lengths": [cp_len(t) for t in tokens]})
        outputs = [row["output"] for row in rows]
        for i, (pred, label) in enumerate(shared_pairs(outputs)):
            raw, rounded = lf_similarity(pred, label)
            sim_golden["shared"].append({"file": name, "index": i, "raw": raw, "rounded": rounded})

    for name, data in (("jieba.json", jieba_golden), ("similarity.json", sim_golden)):
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            write_compact(data, f)
        print("wrote", os.path.join(OUT, name), file=sys.stderr)


def write_compact(data, f):
    """One JSON object per list entry and line: small files that still diff well."""
    f.write("{\n")
    items = list(data.items())
    for k, (key, value) in enumerate(items):
        f.write(json.dumps(key) + ": ")
        if isinstance(value, list):
            f.write("[\n" + ",\n".join(json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in value)
                    + "\n]")
        else:
            f.write(json.dumps(value, ensure_ascii=False))
        f.write(",\n" if k < len(items) - 1 else "\n")
    f.write("}\n")


if __name__ == "__main__":
    main()
