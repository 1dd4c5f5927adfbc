#!/usr/bin/python3
"""Golden chat-template renderings for sft-native's template tests.

Renders conversations with each model's own Jinja ``chat_template`` (from ../shared/assets/tokenizers/*/
tokenizer_config.json) the way HF transformers does (jinja2 ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, tojson = json.dumps(ensure_ascii=False), raise_exception), and writes
src/test/resources/golden/template/<tokenizer>.json. Tests compare sft-native's named templates and its
``template: auto`` (jinjava) against these strings; they never run Python.

Run from the repository root with a python3 that has jinja2 3.1 (here: pyenv's 3.11):
    python3 tools/golden/gen_template_golden.py
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared", "assets", "tokenizers")
OUT = os.path.join(ROOT, "src", "test", "resources", "golden", "template")

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}]

# role: user / assistant / function / observation (LLaMA-Factory's roles); system is separate.
CASES = [
    {"name": "single", "system": None, "messages": [
        ["user", "Describe a process of making crepes."],
        ["assistant", "Mix flour, eggs and milk.\n\nThen fry thin layers."]]},
    {"name": "single_system", "system": "You are a careful assistant.", "messages": [
        ["user", "What is 2+2?"], ["assistant", "4"]]},
    {"name": "multi", "system": None, "messages": [
        ["user", "Hi"], ["assistant", "Hello! How can I help?"],
        ["user", "Tell me a joke."], ["assistant", "Why did the chicken cross the road?"],
        ["user", "Why?"], ["assistant", "To get to the other side."]]},
    {"name": "multi_system", "system": "Answer in one sentence.", "messages": [
        ["user", "Who wrote Hamlet?"], ["assistant", "William Shakespeare wrote Hamlet."],
        ["user", "When?"], ["assistant", "Around 1600."]]},
    {"name": "chinese", "system": None, "messages": [
        ["user", "识别并解释给定列表中的两个科学理论：细胞理论和日心说。"],
        ["assistant", "细胞理论是生物科学的一个理论，它认为所有生命体都是由微小的基本单元——细胞所构成。"]]},
    {"name": "code_and_symbols", "system": None, "messages": [
        ["user", "Write `print(\"hi\")` in Python 3 & explain <tags> {{braces}}."],
        ["assistant", "```python\nprint(\"hi\")\n```\nIt prints hi. Emoji: 🙂 tabs:\tend"]]},
    # Jinja templates may trim contents (llama3) where LLaMA-Factory's templates do not.
    {"name": "untrimmed", "named_equal": False, "system": None, "messages": [
        ["user", "  padded question \n"], ["assistant", " padded answer  "]]},
]
TOOL_CASES = [
    {"name": "tools", "system": None, "tools": TOOLS, "messages": [
        ["user", "Weather in Paris?"],
        ["function", json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})],
        ["observation", "{\"temp\": 21}"],
        ["assistant", "It is 21 degrees in Paris."]]},
]
# Qwen3's template with apply_chat_template keyword arguments and thoughts in the answers.
REASONING_CASES = [
    {"name": "nothink_single", "kwargs": {"enable_thinking": False}, "system": None, "messages": [
        ["user", "Describe a process of making crepes."], ["assistant", "Mix flour, eggs and milk."]]},
    {"name": "nothink_multi", "kwargs": {"enable_thinking": False}, "system": "Answer briefly.", "messages": [
        ["user", "Hi"], ["assistant", "Hello!"], ["user", "2+2?"], ["assistant", "4"]]},
    {"name": "think_single", "system": None, "messages": [
        ["user", "2+2?"], ["assistant", "<think>\nAdd two and two.\n</think>\n\n4"]]},
    {"name": "think_multi", "system": None, "messages": [
        ["user", "2+2?"], ["assistant", "<think>\nAdd two and two.\n</think>\n\n4"],
        ["user", "3+3?"], ["assistant", "<think>\nAdd three and three.\n</think>\n\n6"]]},
]
TOKENIZERS = {"qwen2_5": CASES + TOOL_CASES, "qwen3": CASES + TOOL_CASES + REASONING_CASES, "llama3": CASES}


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def hf_messages(system, messages):
    """LLaMA-Factory roles to HF chat messages (function -> assistant tool_calls, observation -> tool)."""
    out = [{"role": "system", "content": system}] if system else []
    for role, content in messages:
        if role == "function":
            call = json.loads(content)
            out.append({"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]})
        elif role == "observation":
            out.append({"role": "tool", "content": content})
        else:
            out.append({"role": role, "content": content})
    return out


def main():
    env = environment()
    os.makedirs(OUT, exist_ok=True)
    for name, cases in TOKENIZERS.items():
        cfg_path = os.path.join(SHARED, name, "tokenizer_config.json")
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
        template = env.from_string(cfg["chat_template"])
        special = {k: cfg[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")
                   if isinstance(cfg.get(k), str)}
        out_cases = []
        for case in cases:
            msgs = hf_messages(case["system"], case["messages"])
            tools = case.get("tools")
            offset = 1 if case["system"] else 0
            kwargs = case.get("kwargs", {})
            full = template.render(messages=msgs, tools=tools, add_generation_prompt=False, **special, **kwargs)
            prompts = [template.render(messages=msgs[:offset + 2 * k + 1], tools=tools,
                                       add_generation_prompt=True, **special, **kwargs)
                       for k in range(len(case["messages"]) // 2)]
            out_cases.append({
                "name": case["name"], "named_equal": case.get("named_equal", True), "kwargs": kwargs,
                "system": case["system"], "tools": json.dumps(tools, ensure_ascii=False) if tools else None,
                "messages": [{"role": r, "content": c} for r, c in case["messages"]],
                "full": full, "prompts": prompts})
        path = os.path.join(OUT, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"tokenizer": name, "generator": "tools/golden/gen_template_golden.py",
                       "jinja2": jinja2.__version__, "cases": out_cases}, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print("wrote", path, len(out_cases), "cases")


if __name__ == "__main__":
    sys.exit(main())
