#!/usr/bin/env python3
"""Golden slot-by-slot encodings of sft-native's named templates, produced by LLaMA-Factory's own template code.

LLaMA-Factory's ``data/template.py``, ``formatter.py`` and ``tool_utils.py`` (read from a checkout; nothing of it is
copied into sft-native) are imported with small stand-ins for the modules they need but do not use here (logging,
the multimodal plugins, the dataset helpers), and run with a recording tokenizer: ``encode(text)`` returns the text
itself as one "id", special tokens, BOS and EOS return markers. The result is, per template, options and
conversation, the exact list of elements LLaMA-Factory tokenizes one by one for each (source, target) pair — what
sft-native's ``SlotTemplate.turnElements`` must produce. Tokenizing each element is shared code tested elsewhere.

Writes src/test/resources/golden/template/llamafactory.json. Run from the repository root with a python3 that has
typing_extensions (the pyenv 3.11 one here), e.g.:
    git --git-dir=/work/.mirror/hiyouga+LLaMA-Factory/repo archive ff6d4d12e src/llamafactory/data \\
        | tar -x -C /tmp/lf && python3 tools/golden/gen_lf_template_golden.py /tmp/lf/src/llamafactory/data
The glaive tool-call conversations are read from ../shared/data/llamafactory-demo (the test reads them there too).
"""
import copy
import datetime as real_datetime
import enum
import importlib.util
import json
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "src", "test", "resources", "golden", "template", "llamafactory.json")
DEMO = os.path.join(ROOT, "..", "shared", "data", "llamafactory-demo", "glaive_toolcall_en_demo.json")
FIXED_DATE = real_datetime.datetime(2026, 1, 5)

TEMPLATES = ["default", "empty", "alpaca", "fewshot", "chatml", "chatml_de", "qwen", "qwen3", "qwen3_nothink",
             "deepseekr1", "sailor", "llama2", "llama2_zh", "llama3", "deepseek", "deepseekcoder", "yi", "smollm",
             "smollm2", "opencoder", "solar", "vicuna", "xuanyuan", "openchat-3.6", "seed_coder", "mistral",
             "ministral", "mistral_small", "zephyr", "openchat", "breeze",
             # families of docs/architectures.md (template/FamilyTemplates.java)
             "gemma", "gemma2", "gemma3", "phi", "phi4", "phi4_mini", "glm4", "olmo", "granite3"]
# phi4_mini writes tools with its own format_tools (<|tool|>...<|/tool|>), which sft-native refuses: plain cases only
NO_TOOL_CASES = {"phi4_mini"}
REASONING = ["qwen3", "deepseekr1"]
TOOL_FORMATS = ["default", "qwen", "llama3", "mistral", "glm4", "glm4_moe", "qwen3_5", "minimax1", "minimax2",
                "seed_oss", "ling", "lfm2", "gemma4"]

TOOLS = json.dumps([
    {"name": "get_weather", "description": "Weather of a city",
     "parameters": {"type": "object", "properties": {
         "city": {"type": "string", "description": "City name"},
         "unit": {"type": "string", "enum": ["c", "f"]},
         "days": {"type": "array", "items": {"type": "integer"}, "description": "Days ahead"}},
         "required": ["city"]}},
    {"type": "function", "function": {"name": "convert", "description": "Convert 온도",
                                      "parameters": {"type": "object", "properties": {
                                          "value": {"type": "number"}}, "required": ["value"]}}}],
    ensure_ascii=False)
CALL = {"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2], "exact": True, "scale": 1.5}}
CALL2 = {"name": "convert", "arguments": {"value": 21, "note": "°C → °F"}}

CONVERSATIONS = {
    "single": (None, None, [("user", "Describe a process of making crepes."),
                            ("assistant", "Mix flour, eggs and milk.\n\nThen fry thin layers.")]),
    "system": ("You are a careful assistant.", None, [("user", "What is 2+2?"), ("assistant", "4")]),
    "multi": (None, None, [("user", "Hi"), ("assistant", "Hello! How can I help?"),
                           ("user", "Tell me a joke."), ("assistant", "Why did the chicken cross the road?"),
                           ("user", "Why?"), ("assistant", "To get to the other side.")]),
    "think": ("Think first.", None, [
        ("user", "2+2?"), ("assistant", "<think>\nAdd two and two.\n</think>\n\n4"),
        ("user", "And 3+3?"), ("assistant", "6"),
        ("user", "And 4+4?"), ("assistant", "<think>\nDouble four.\n</think>\n\n8")]),
    "think_inline": (None, None, [("user", "Hi"), ("assistant", "<think>short</think>Hello")]),
    "tools": (None, TOOLS, [("user", "Weather in Paris?"), ("function", json.dumps(CALL)),
                            ("observation", "{\"temp\": 21}"), ("assistant", "It is 21 degrees.")]),
    "parallel": ("Be brief.", TOOLS, [("user", "Weather and convert?"), ("function", json.dumps([CALL, CALL2])),
                                      ("observation", "[21, 69.8]"), ("assistant", "21 C, 69.8 F.")]),
    "thought_call": (None, TOOLS, [("user", "Weather?"),
                                   ("function", "<think>\nI should call.\n</think>\n\n" + json.dumps(CALL)),
                                   ("observation", "{\"temp\": 21}"), ("assistant", "21 degrees.")]),
    "tool_call_words": (None, TOOLS, [("user", "Weather?"),
                                      ("function", "Let me check.<tool_call>" + json.dumps(CALL) + "</tool_call>"),
                                      ("observation", "{\"temp\": 21}"), ("assistant", "21 degrees.")]),
}
PLAIN = ["single", "system", "multi", "think", "think_inline"]
TOOL_CASES = ["tools", "parallel", "thought_call", "tool_call_words"]
DEMO_CASES = 3  # the first glaive conversations with a function call


def load_llamafactory(data_dir):
    """Imports template.py with stand-ins for the modules it imports but does not need for text templates."""
    pkg = types.ModuleType("lf")
    pkg.__path__ = []
    data = types.ModuleType("lf.data")
    data.__path__ = [data_dir]
    extras = types.ModuleType("lf.extras")
    extras.__path__ = []
    logging = types.ModuleType("lf.extras.logging")

    class Logger:
        def __getattr__(self, name):
            return lambda *a, **k: None

    logging.get_logger = lambda name=None: Logger()
    extras.logging = logging
    data_utils = types.ModuleType("lf.data.data_utils")

    class Role(str, enum.Enum):
        USER = "user"
        ASSISTANT = "assistant"
        SYSTEM = "system"
        FUNCTION = "function"
        OBSERVATION = "observation"

    data_utils.Role = Role
    data_utils.SLOTS = list
    mm_plugin = types.ModuleType("lf.data.mm_plugin")
    mm_plugin.get_mm_plugin = lambda name, **kwargs: None
    for name, mod in {"lf": pkg, "lf.data": data, "lf.extras": extras, "lf.extras.logging": logging,
                      "lf.data.data_utils": data_utils, "lf.data.mm_plugin": mm_plugin}.items():
        sys.modules[name] = mod
    modules = {}
    for name in ["tool_utils", "formatter", "template", "converter"]:
        spec = importlib.util.spec_from_file_location("lf.data." + name, os.path.join(data_dir, name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules["lf.data." + name] = mod
        spec.loader.exec_module(mod)
        modules[name] = mod

    class FixedDatetime(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return FIXED_DATE

    modules["tool_utils"].datetime = FixedDatetime
    global CONVERTER
    CONVERTER = modules["converter"]
    return modules["template"], Role


class RecordingTokenizer:
    """Records what LLaMA-Factory would tokenize: each text element, special token, BOS and EOS."""

    def __init__(self):
        self.bos_token = "<s>"
        self.eos_token = "</s>"
        self.pad_token = None
        self.chat_template = "recorded"

    @property
    def bos_token_id(self):
        return {"bos": True}

    @property
    def eos_token_id(self):
        return {"eos": True}

    @property
    def pad_token_id(self):
        return None if self.pad_token is None else {"pad": True}

    def encode(self, text, add_special_tokens=False):
        return [{"text": text}]

    def convert_tokens_to_ids(self, token):
        return {"token": token}

    def add_special_tokens(self, mapping, replace_additional_special_tokens=False):
        if "eos_token" in mapping:
            self.eos_token = mapping["eos_token"]
        return 0


class DataArgs:
    def __init__(self, template, tool_format=None, enable_thinking=True, preserve_thinking=False):
        self.template = template
        self.tool_format = tool_format
        self.enable_thinking = enable_thinking
        self.preserve_thinking = preserve_thinking
        self.default_system = None
        self.train_on_prompt = False


def encode_oneturn(tm, role_enum, name, options, system, tools, messages):
    """encode_oneturn: LLaMA-Factory's chat / predict prompt (reasoning templates treat thoughts differently)."""
    saved = tm.TEMPLATES[name]
    tm.TEMPLATES[name] = copy.deepcopy(saved)
    try:
        tok = RecordingTokenizer()
        args = DataArgs(name, None, options.get("enable_thinking", True), options.get("preserve_thinking", False))
        template = tm.get_template_and_fix_tokenizer(tok, args)
        msgs = [{"role": role_enum(r), "content": c} for r, c in messages]
        prompt, response = template.encode_oneturn(tok, msgs, system or "", tools or "")
        return [prompt, response]
    finally:
        tm.TEMPLATES[name] = saved


def encode(tm, role_enum, name, options, system, tools, messages):
    saved = tm.TEMPLATES[name]
    tm.TEMPLATES[name] = copy.deepcopy(saved)
    try:
        tok = RecordingTokenizer()
        args = DataArgs(name, options.get("tool_format"), options.get("enable_thinking", True),
                        options.get("preserve_thinking", False))
        template = tm.get_template_and_fix_tokenizer(tok, args)
        msgs = [{"role": role_enum(r), "content": c} for r, c in messages]
        discard = options.get("mask_history", False) and not template.preserve_thinking
        # (older template.py, --obsolete: no discarding_history_cot parameter; it defaults to False)
        pairs = template.encode_multiturn(tok, msgs, system or "", tools or "", *([discard] if discard else []))
        return {"pairs": [[src, tgt] for src, tgt in pairs]}
    except Exception as e:  # LLaMA-Factory refuses the example: sft-native must too
        return {"error": type(e).__name__ + ": " + str(e)}
    finally:
        tm.TEMPLATES[name] = saved


def demo_conversations():
    roles = {"human": "user", "gpt": "assistant", "function_call": "function", "observation": "observation"}
    with open(DEMO, encoding="utf-8") as f:
        records = json.load(f)
    out = []
    for i, r in enumerate(records):
        if any(m["from"] == "function_call" for m in r["conversations"]):
            out.append((i, r.get("tools") or None, [(roles[m["from"]], m["value"]) for m in r["conversations"]]))
        if len(out) == DEMO_CASES:
            break
    return out


OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
               "observation_tag": "tool", "function_tag": "function", "system_tag": "system"}
TOOL_CALL = {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
OPENAI_RECORDS = [
    {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello"}]},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    {"messages": [{"role": "system", "content": "Use detailed thinking on."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello"}]},
    {"messages": [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather?"},
                  {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL, TOOL_CALL]},
                  {"role": "tool", "content": "{\"temp\": 21}"}, {"role": "tool", "content": "{\"temp\": 22}"},
                  {"role": "assistant", "content": "21 and 22."}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
         "type": "object", "properties": {"city": {"type": "string"}}}}}]},
    {"messages": [{"role": "user", "content": "Weather?"},
                  {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
                  {"role": "tool", "content": "sunny"}],
     "tools": "[]"},
    {"messages": [{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"}]},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                  {"role": "user", "content": "Bye"}]},
]


def openai_cases():
    attr = types.SimpleNamespace(messages="messages", system=None, tools="tools", images=None, videos=None,
                                 audios=None, ranking=False, kto_tag=None, chosen=None, rejected=None, **OPENAI_TAGS)
    converter = CONVERTER.OpenAIDatasetConverter(attr, types.SimpleNamespace(media_dir=None))
    out = []
    for record in OPENAI_RECORDS:
        r = converter(record)
        out.append({"record": record, "prompt": [[str(m["role"].value if hasattr(m["role"], "value") else m["role"]),
                                                  m["content"]] for m in r["_prompt"]],
                    "response": [[str(m["role"].value if hasattr(m["role"], "value") else m["role"]), m["content"]]
                                 for m in r["_response"]],
                    "system": r["_system"], "tools": r["_tools"]})
    return out


# templates LLaMA-Factory removed on 2026-01-09 ("clean obsolete models", 5cccaeec8) and sft-native keeps: checked
# against the last template.py that has them (--obsolete writes llamafactory_obsolete.json):
#     git --git-dir=/work/.mirror/hiyouga+LLaMA-Factory/repo archive 5cccaeec8^ src/llamafactory/data \\
#         | tar -x -C /tmp/lf-old && python3 tools/golden/gen_lf_template_golden.py /tmp/lf-old/src/llamafactory/data \\
#         --obsolete
OBSOLETE = ["baichuan", "baichuan2"]


def main_obsolete():
    tm, role_enum = load_llamafactory(sys.argv[1])
    cases = []
    for name in OBSOLETE:
        for conv in PLAIN + TOOL_CASES:
            system, tools, messages = CONVERSATIONS[conv]
            case = {"template": name, "options": {}, "conversation": conv, "system": system, "tools": tools,
                    "messages": [list(m) for m in messages]}
            case.update(encode(tm, role_enum, name, {}, system, tools, messages))
            cases.append(case)
    out = OUT.replace("llamafactory.json", "llamafactory_obsolete.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"generator": "tools/golden/gen_lf_template_golden.py --obsolete",
                   "llamafactory_commit": "5cccaeec8^", "llama3_date": FIXED_DATE.strftime("%Y-%m-%d"),
                   "cases": cases}, f, ensure_ascii=False, separators=(",", ":"))
    print("wrote %d cases (%d errors) to %s" % (len(cases), sum("error" in c for c in cases), out))


def main():
    if "--obsolete" in sys.argv:
        return main_obsolete()
    tm, role_enum = load_llamafactory(sys.argv[1])
    cases = []

    def add(name, options, conv_name, system, tools, messages, demo_index=None):
        case = {"template": name, "options": options, "conversation": conv_name}
        if demo_index is None:
            case.update({"system": system, "tools": tools, "messages": [list(m) for m in messages]})
        else:
            case["demo_index"] = demo_index
        case.update(encode(tm, role_enum, name, options, system, tools, messages))
        cases.append(case)

    for name in TEMPLATES:
        option_sets = [{}]
        if name in REASONING:
            option_sets += [{"enable_thinking": False}, {"mask_history": True},
                            {"mask_history": True, "preserve_thinking": True}]
        for options in option_sets:
            for conv in PLAIN + ([] if name in NO_TOOL_CASES else TOOL_CASES):
                system, tools, messages = CONVERSATIONS[conv]
                add(name, options, conv, system, tools, messages)
    oneturn = []
    for name in REASONING:
        for options in [{}, {"enable_thinking": False}, {"preserve_thinking": True}]:
            for conv in ["multi", "think", "single"]:
                system, tools, messages = CONVERSATIONS[conv]
                msgs = messages[:-1] + [("assistant", "")]
                oneturn.append({"template": name, "options": options, "system": system,
                                "messages": [list(m) for m in msgs],
                                "pair": encode_oneturn(tm, role_enum, name, options, system, tools, msgs)})
    demos = demo_conversations()
    for name in ["qwen3", "llama3", "mistral", "mistral_small", "default"]:
        for fmt in [None] + TOOL_FORMATS:
            options = {} if fmt is None else {"tool_format": fmt}
            for conv in TOOL_CASES:
                system, tools, messages = CONVERSATIONS[conv]
                add(name, options, conv, system, tools, messages)
            for index, tools, messages in demos:
                add(name, options, "glaive", None, tools, messages, demo_index=index)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"generator": "tools/golden/gen_lf_template_golden.py", "llamafactory_commit": "ff6d4d12e",
                   "llama3_date": FIXED_DATE.strftime("%Y-%m-%d"), "cases": cases, "oneturn": oneturn,
                   "openai": {"tags": OPENAI_TAGS, "cases": openai_cases()}}, f, ensure_ascii=False,
                  separators=(",", ":"))
    print("wrote %d cases (%d errors) to %s" % (len(cases), sum("error" in c for c in cases), OUT))


if __name__ == "__main__":
    main()
