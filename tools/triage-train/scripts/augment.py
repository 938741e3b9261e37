#!/usr/bin/env python3
"""Expands the hand-written seeds (seeds_zh.txt, seeds_en.txt) into train.jsonl, plus the training-only
vocabulary examples of lexicon.py.

Written for protofuse (Apache-2.0). Deterministic: the same seeds give byte-identical output, so the checked-in
train.jsonl can be regenerated and diffed. Every variant keeps its seed's `group`, which is what the training
tool splits on, so no variant of a held-out seed is ever trained on.

    python3 tools/triage-train/scripts/augment.py   # rewrites config/triage/data/train.jsonl
"""
import json
import os
import random

import lexicon

HERE = os.path.dirname(os.path.abspath(__file__))
# The seeds and train.jsonl stay with the shipped model (the training tool's default --data); the scripts live
# with the tool.
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "config", "triage", "data"))
VARIANTS = 13

ZH_PREFIX = ["你好，", "在吗 ", "亲，", "您好 ", "hi ", "喂 ", "请问", "那个", "麻烦问下", "客服，", "hello ",
             "额 ", "老板 ", "我想问下 ", "急！", "你好 在吗 "]
ZH_SUFFIX = ["？", "??", "!!", "谢谢", "啊", "呢", " 急", "😭", "🙏", "。。。", " thx", "呀", "吗", " 谢谢啦", "！！！",
             "😡", " 快点", "...", "哈", " 在线等"]
# Spellings real customers type: pinyin for a word, homophones, IME slips, English for a Chinese word.
ZH_SWAPS = [("退款", ["退kuan", "tui款", "tuikuan", "refund", "退歀", "退宽"]),
            ("退货", ["退huo", "tuihuo", "退或", "return"]),
            ("快递", ["快di", "kuaidi", "快第", "快滴", "parcel"]),
            ("物流", ["wuliu", "物留"]),
            ("人工", ["人gong", "rengong", "人攻", "人功"]),
            ("客服", ["kf", "客fu", "kefu"]),
            ("发票", ["fapiao", "发piao", "发飘"]),
            ("密码", ["mima", "密吗", "password"]),
            ("登录", ["登陆", "denglu", "login"]),
            ("投诉", ["tousu", "投述"]),
            ("发货", ["fahuo", "发或"]),
            ("订单", ["order", "定单", "dingdan"]),
            ("账号", ["帐号", "zhanghao", "账户"]),
            ("付款", ["fukuan", "付kuan", "pay"]),
            ("支付", ["zhifu", "pay"]),
            ("闪退", ["shantui", "闪tui"]),
            ("验证码", ["yanzhengma", "验证吗", "code"]),
            ("什么", ["啥", "神马", "sm"]),
            ("怎么", ["咋", "zenme", "肿么"]),
            ("没有", ["木有", "没"]),
            ("我", ["俺", "偶"]),
            ("吗", ["嘛", "ma"]),
            ("的", ["滴", "地"])]
EN_PREFIX = ["hi ", "hello, ", "excuse me ", "pls ", "um ", "hey ", "hi, ", "yo ", "sorry but ", "quick question ",
             "hello?? ", "ok so ", "你好 ", "good morning, "]
EN_SUFFIX = ["?", "??", "!!!", " please", " pls", " thanks", " asap", " 🙏", " :(", " thx", " now", "...", " plz",
             " 谢谢", " 😡", " ty", " !!", " help", " urgent", " lol"]
EN_SWAPS = [(" you ", [" u ", " ya "]), ("please", ["pls", "plz", "pleas"]), (" are ", [" r "]),
            ("your", ["ur", "youre"]), ("thanks", ["thx", "tks"]), ("dont", ["don't", "do not", "dnt"]),
            ("cant", ["can't", "cannot", "cnt"]), ("my ", ["me ", "mah "]), ("refund", ["refnd", "refound", "退款"]),
            ("order", ["oder", "ordr"]), ("package", ["pakage", "packge", "pkg"]), ("parcel", ["parcle", "快递"]),
            ("account", ["acount", "acct"]), ("password", ["pasword", "pwd"]), ("human", ["humen", "人工"]),
            ("agent", ["agant", "agnet"]), ("app", ["App", "APP", "aap"]), ("where", ["wher", "were", "whr"]),
            ("what", ["wat", "wht"]), ("the ", ["teh ", "da "]), ("is ", ["iz "])]


def typo(rng, text):
    chars = list(text)
    if len(chars) < 4:
        return text
    i = rng.randrange(1, len(chars) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        del chars[i]
    elif kind == 1:
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    else:
        chars.insert(i, chars[i])
    return "".join(chars)


def swap(rng, text, swaps):
    hits = [(a, bs) for a, bs in swaps if a in text]
    if not hits:
        return text
    a, bs = rng.choice(hits)
    return text.replace(a, rng.choice(bs), 1)


def fullwidth(text):
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def variant(rng, seed, lang):
    zh = lang == "zh"
    text = seed
    for _ in range(rng.randrange(1, 3)):
        op = rng.randrange(7)
        if op in (0, 1):
            text = swap(rng, text, ZH_SWAPS if zh else EN_SWAPS)
        elif op == 2 and not zh:
            text = typo(rng, text)
        elif op == 3:
            text = text.replace(" ", "") if zh else text.upper() if rng.random() < 0.2 else text.capitalize()
        elif op == 4 and zh:
            text = fullwidth(text) if rng.random() < 0.5 else " ".join(text)
        elif op == 5 and zh:
            text = typo(rng, text)
    if rng.random() < 0.45:
        text = rng.choice(ZH_PREFIX if zh else EN_PREFIX) + text
    if rng.random() < 0.6:
        text = text + rng.choice(ZH_SUFFIX if zh else EN_SUFFIX)
    return text.strip()


def seeds(path):
    intent = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("# "):
                continue
            if line.startswith("## "):
                intent = line[3:].strip()
                continue
            yield intent, line


def main():
    rng = random.Random(20261201)
    out = []
    for lang in ("zh", "en"):
        counters = {}
        for intent, seed in seeds(os.path.join(DATA, f"seeds_{lang}.txt")):
            counters[intent] = counters.get(intent, 0) + 1
            group = f"{lang}-{intent}-{counters[intent]:03}"
            seen = {seed}
            out.append({"text": seed, "intent": intent, "lang": lang, "group": group})
            for _ in range(VARIANTS * 3):
                if len(seen) > VARIANTS:
                    break
                text = variant(rng, seed, lang)
                if text and text not in seen:
                    seen.add(text)
                    out.append({"text": text, "intent": intent, "lang": lang, "group": group})
    # Second batch (seeds_<lang>_more.txt): after the first, so the first batch's variants stay byte-identical.
    # Pinned to the training split: the split ranks a stratum's groups, so new groups in the ranking would move
    # first-batch groups across the split (held-out seeds into training). Pinned, the held-out splits stay
    # exactly the first batch's. A text that any example already has (seed or variant) is skipped, so nothing
    # held out is ever trained on verbatim.
    written = {row["text"].lower() for row in out}

    def add(text, intent, lang, group):
        if text and text.lower() not in written:
            written.add(text.lower())
            out.append({"text": text, "intent": intent, "lang": lang, "group": group, "split": "train"})
            return True
        return False

    for lang in ("zh", "en"):
        counters = {}
        for intent, seed in seeds(os.path.join(DATA, f"seeds_{lang}_more.txt")):
            if seed.lower() in written:
                continue
            counters[intent] = counters.get(intent, 0) + 1
            group = f"{lang}-{intent}-b{counters[intent]:03}"
            kept = int(add(seed, intent, lang, group))
            for _ in range(VARIANTS * 3):
                if kept > VARIANTS:
                    break
                kept += add(variant(rng, seed, lang), intent, lang, group)
    for text, intent, lang, group in lexicon.examples(rng):
        out.append({"text": text, "intent": intent, "lang": lang, "group": group, "split": "train"})
    for lang, table in lexicon.WORDS.items():
        for intent, words in table.items():
            for word in words:
                add(word, intent, lang, f"{lang}-{intent}-lexicon")
                for _ in range(12):
                    add(variant(rng, word, lang), intent, lang, f"{lang}-{intent}-lexicon")
    with open(os.path.join(DATA, "train.jsonl"), "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(out)} examples")


if __name__ == "__main__":
    main()
