"""Messages produced by the engine, as data, rendered in English or Chinese on demand.

The engine returns :class:`Message` values (a key and parameters) rather than strings so that
the bot, the console and the exports can each render them in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from flows.text import Lang


@dataclass(frozen=True, slots=True)
class Message:
    """A message key with its parameters."""

    key: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def msg(key: str, **params: object) -> Message:
    """Build a :class:`Message`, converting parameters to strings."""
    return Message(key, MappingProxyType({k: str(v) for k, v in params.items()}))


CATALOGUE: Mapping[str, Mapping[Lang, str]] = {
    "empty": {"en": "Please type an answer.", "zh": "请输入答案。"},
    "yes_no": {
        "en": "Please answer yes or no (or 'unknown' if not available yet).",
        "zh": "请回答“是”或“否”（尚无结果时回答“未知”）。",
    },
    "choice": {
        "en": "Please pick one of: {options}.",
        "zh": "请选择其中之一：{options}。",
    },
    "not_a_number": {
        "en": "I could not read a number in '{text}'. Type it as printed, e.g. {example}.",
        "zh": "无法从“{text}”中读取数字。请按化验单填写，例如 {example}。",
    },
    "ambiguous_separator": {
        "en": "'{text}' is ambiguous: is the comma a decimal point or a thousands separator? "
        "Type e.g. {a} or {b}.",
        "zh": "“{text}”有歧义：逗号是小数点还是千位分隔符？请输入例如 {a} 或 {b}。",
    },
    "ambiguous_one": {
        "en": "'{text}' is ambiguous: is the comma a decimal point or a thousands separator? "
        "Type e.g. {a}.",
        "zh": "“{text}”有歧义：逗号是小数点还是千位分隔符？请输入例如 {a}。",
    },
    "other_label": {
        "en": "'{label}' labels another value ({other}); this question asks for {question}. "
        "Type this question's value, or several labelled values in one message.",
        "zh": "“{label}”是另一项数值（{other}）的标签；本题询问的是{question}。请输入本题的数值，或在一条消息中输入多项带标签的数值。",
    },
    "unknown_unit": {
        "en": "I do not know the unit '{unit}' for {analyte}. Accepted: {units}.",
        "zh": "{analyte} 不支持单位“{unit}”。可用单位：{units}。",
    },
    "impossible": {
        "en": "{value} is not possible for {what} (expected {low} to {high}). Please check it.",
        "zh": "{what} 不可能为 {value}（应在 {low} 至 {high} 之间）。请核对。",
    },
    "impossible_hint_unit": {
        "en": "{value} is not possible for {what} in {unit}. Did you mean {suggestion}? "
        "Please type the unit.",
        "zh": "以 {unit} 计，{what} 不可能为 {value}。您是否指 {suggestion}？请输入单位。",
    },
    "unusual": {
        "en": "{value} is unusual for {what}. Is it correct?",
        "zh": "{what} 为 {value} 较为少见。是否正确？",
    },
    "uln_needed": {
        "en": "Please also type the lab's upper limit of normal, e.g. '{example} ULN {uln}', "
        "or the multiple directly, e.g. '0.8x ULN'.",
        "zh": "请同时输入该化验室的正常值上限，例如“{example} ULN {uln}”，或直接输入倍数，"
        "例如“0.8x ULN”。",
    },
    "uln_not_positive": {
        "en": "The upper limit of normal must be above zero.",
        "zh": "正常值上限必须大于零。",
    },
    "echo_converted": {"en": "{raw} = {normalised}", "zh": "{raw} = {normalised}"},
    "echo": {"en": "{normalised}", "zh": "{normalised}"},
    "unknown_answer": {"en": "Unknown / pending", "zh": "未知 / 待定"},
    "yes": {"en": "Yes", "zh": "是"},
    "no": {"en": "No", "zh": "否"},
    "not_current": {
        "en": "That answer is for another question; the current question is “{current}”.",
        "zh": "该答案不属于当前问题；当前问题为“{current}”。",
    },
    "not_answerable": {
        "en": "The screening has reached its outcome; to change an answer, go back to it.",
        "zh": "筛选已得出结论；如需修改答案，请返回相应问题。",
    },
    "cannot_go_back": {
        "en": "“{question}” has not been asked in this screening.",
        "zh": "本次筛选尚未询问“{question}”。",
    },
    "no_pending": {
        "en": "There is nothing pending to complete.",
        "zh": "没有待补充的内容。",
    },
    "not_reviewable": {
        "en": "Criterion {criterion} does not await an investigator's decision.",
        "zh": "标准 {criterion} 无需研究者裁定。",
    },
    "code_invalid": {
        "en": "That screening code is not valid: use 3–32 letters, digits or dashes, with at "
        "least one digit, as your site issues them (e.g. S-104). Never use the patient's name "
        "or initials.",
        "zh": "筛选编号无效：请使用 3–32 个字母、数字或短横线，且至少包含一个数字，按本中心规则编号"
        "（例如 S-104）。请勿使用患者姓名或缩写。",
    },
    "code_taken": {
        "en": "Screening code {code} is already in use.",
        "zh": "筛选编号 {code} 已被使用。",
    },
    "already_closed": {
        "en": "Screening {code} is already closed.",
        "zh": "筛选 {code} 已关闭。",
    },
    "cannot_sign": {
        "en": "Only an eligible screening can be signed: every criterion met, no result "
        "pending and no investigator decision outstanding.",
        "zh": "只有符合入组条件的筛选才能签署：所有标准均满足，无待出结果，无待研究者裁定事项。",
    },
    "completed_already": {
        "en": "This screening has an outcome: sign it, or confirm the exclusion.",
        "zh": "该筛选已有结论：请签署或确认排除。",
    },
    "reason_needed": {
        "en": "Please give a reason.",
        "zh": "请填写原因。",
    },
    "not_owner": {
        "en": "Screening {code} was started by someone else: only they can answer or close it.",
        "zh": "筛选 {code} 由他人发起：只有发起人可以作答或关闭。",
    },
    "decide_role": {
        "en": "Only an investigator or an admin can decide a criterion left to the investigator.",
        "zh": "只有研究者或管理员可以裁定留待研究者决定的标准。",
    },
    "not_excluded": {
        "en": "This screening has not excluded the patient.",
        "zh": "该筛选未排除该患者。",
    },
}


def render(message: Message, lang: Lang) -> str:
    """Render a message in ``lang`` (English when no translation exists)."""
    templates = CATALOGUE.get(message.key)
    if templates is None:
        return message.key
    template = templates.get(lang) or templates["en"]
    return template.format(**message.params)
