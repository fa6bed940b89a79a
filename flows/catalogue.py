"""Every word Prescreen shows people, in English and Simplified Chinese: one catalogue.

The engine's messages, the screens, the bot's own wording and the transcripts' labels are all
looked up here by key (:func:`tr`); the chat's own wording (menus, checklists, reminders, the
bot's replies) is kept in :mod:`flows.catalogue_chat`. A test checks that every entry has both
languages, that every key the code uses exists and that no key is in both parts. Protocol
wording (questions, criteria) comes from the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping

from flows.catalogue_chat import CHAT
from flows.text import Lang

_SHOWN: Mapping[str, Mapping[Lang, str]] = {
    # --- What the engine says about an answer (flows.parsing, flows.dialog, bot.service).
    "empty": {"en": "Please type an answer.", "zh": "请输入答案。"},
    "yes_no": {
        "en": "Please answer yes or no (or 'unknown' if not available yet).",
        "zh": "请回答“是”或“否”（尚无结果时回答“未知”）。",
    },
    "choice": {"en": "Please pick one of: {options}.", "zh": "请选择其中之一：{options}。"},
    "not_a_number": {
        "en": "I could not read a number in '{text}'. Type it as printed, e.g. {example}.",
        "zh": "无法从“{text}”中读取数字。请按化验单填写，例如 {example}。",
    },
    "ambiguous_separator": {
        "en": "'{text}' is ambiguous: is the comma a decimal point or a thousands separator? Type e.g. {a} or {b}.",
        "zh": "“{text}”有歧义：逗号是小数点还是千位分隔符？请输入例如 {a} 或 {b}。",
    },
    "ambiguous_one": {
        "en": "'{text}' is ambiguous: is the comma a decimal point or a thousands separator? Type e.g. {a}.",
        "zh": "“{text}”有歧义：逗号是小数点还是千位分隔符？请输入例如 {a}。",
    },
    "other_label": {
        "en": "'{label}' labels another value ({other}); this question asks for {question}. Type this question's value, or several labelled values in one message.",
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
        "en": "{value} is not possible for {what} in {unit}. Did you mean {suggestion}? Please type the unit.",
        "zh": "以 {unit} 计，{what} 不可能为 {value}。您是否指 {suggestion}？请输入单位。",
    },
    "unusual": {
        "en": "{value} is unusual for {what}. Is it correct?",
        "zh": "{what} 为 {value} 较为少见。是否正确？",
    },
    "uln_needed": {
        "en": "Please also type the lab's upper limit of normal, e.g. '{example} ULN {uln}', or the multiple directly, e.g. '0.8x ULN'.",
        "zh": "请同时输入该化验室的正常值上限，例如“{example} ULN {uln}”，或直接输入倍数，例如“0.8x ULN”。",
    },
    "value_not_ratio": {
        "en": "This question needs the value itself, as printed with its unit ({units}): {analyte} cannot be given here as a multiple of the upper limit of normal.",
        "zh": "本题需要实际数值及其单位（{units}）：此处{analyte}不能以正常值上限的倍数填写。",
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
    "no_pending": {"en": "There is nothing pending to complete.", "zh": "没有待补充的内容。"},
    "not_reviewable": {
        "en": "Criterion {criterion} does not await an investigator's decision.",
        "zh": "标准 {criterion} 无需研究者裁定。",
    },
    "code_invalid": {
        "en": "That screening code is not valid: use 3–32 letters, digits or dashes, with at least one digit, as your site issues them (e.g. S-104). Never use the patient's name or initials.",
        "zh": "筛选编号无效：请使用 3–32 个字母、数字或短横线，且至少包含一个数字，按本中心规则编号（例如 S-104）。请勿使用患者姓名或缩写。",
    },
    "code_taken": {
        "en": "Screening code {code} is already in use.",
        "zh": "筛选编号 {code} 已被使用。",
    },
    "already_closed": {"en": "Screening {code} is already closed.", "zh": "筛选 {code} 已关闭。"},
    "cannot_sign": {
        "en": "Only an eligible screening can be signed: every criterion met, no result pending and no investigator decision outstanding.",
        "zh": "只有符合入组条件的筛选才能签署：所有标准均满足，无待出结果，无待研究者裁定事项。",
    },
    "completed_already": {
        "en": "This screening has an outcome: sign it, or confirm the exclusion.",
        "zh": "该筛选已有结论：请签署或确认排除。",
    },
    "reason_needed": {"en": "Please give a reason.", "zh": "请填写原因。"},
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
    # --- Screens: a question's header, an outcome and its explanation (flows.render).
    "question_of": {
        "en": "Question {pos} · up to {left} more",
        "zh": "第 {pos} 题 · 最多还有 {left} 题",
    },
    "question_last": {"en": "Question {pos} · the last", "zh": "第 {pos} 题 · 最后一题"},
    "criterion_text": {"en": "{name}: “{text}”", "zh": "{name}：“{text}”"},
    "criterion": {"en": "Criterion", "zh": "标准"},
    "criteria": {"en": "Criteria", "zh": "标准"},
    "required": {"en": "required", "zh": "要求"},
    "not_answered": {"en": "not answered", "zh": "未回答"},
    "excluded": {
        "en": "Not eligible: criterion {number} is not met.",
        "zh": "不符合入组条件：未满足标准 {number}。",
    },
    "review": {
        "en": "Needs the investigator's decision on criterion {number}.",
        "zh": "需研究者裁定标准 {number}。",
    },
    "pending": {
        "en": "Pending: criterion {number} cannot be decided yet.",
        "zh": "待定：标准 {number} 尚无法判断。",
    },
    "missing": {"en": "Missing", "zh": "缺少"},
    "review_then_results": {
        "en": "Waiting for the investigator's decision, then for a result:",
        "zh": "等待研究者裁定，然后等待检查结果：",
    },
    "awaited": {"en": "Result awaited for criterion {number}.", "zh": "标准 {number} 的结果待出。"},
    "review_then_results_next": {
        "en": "Next, in either order: the investigator decides, and the result is entered with “Results arrived” when it comes. If the investigator rejects, the patient is not eligible.",
        "zh": "接下来（顺序不限）：研究者裁定；结果出来后点击“结果已出”录入。若研究者否决，则患者不符合入组条件。",
    },
    "eligible": {"en": "Eligible: every criterion is met.", "zh": "符合入组条件：所有标准均满足。"},
    "eligible_approved": {
        "en": "Eligible: every criterion is met, except those the investigator approved (☑️).",
        "zh": "符合入组条件：除研究者已批准的标准（☑️）外，所有标准均满足。",
    },
    "between": {
        "en": "between {low} and {high} (inclusive)",
        "zh": "介于 {low} 与 {high} 之间（含）",
    },
    "investigator_approved": {"en": "approved by the investigator", "zh": "研究者已批准"},
    "investigator_rejected": {"en": "rejected by the investigator", "zh": "研究者已否决"},
    # --- A screening's status, in lists and transcripts.
    "status_in_progress": {"en": "in progress", "zh": "进行中"},
    "status_ineligible": {"en": "not eligible", "zh": "不符合"},
    "status_needs_review": {"en": "needs investigator review", "zh": "待研究者裁定"},
    "status_pending": {"en": "pending results", "zh": "待结果"},
    "status_eligible": {"en": "eligible", "zh": "符合"},
    "standing_excluded": {
        "en": "not eligible, criterion {number} ({why})",
        "zh": "不符合，标准 {number}（{why}）",
    },
    # --- The legend of a summary's marks.
    "legend_approved": {
        "en": "☑️ {name} — not met, approved by the investigator: {reason}",
        "zh": "☑️ {name} — 未满足，研究者已批准：{reason}",
    },
    "legend_rejected": {
        "en": "❌ {name} — rejected by the investigator: {reason}",
        "zh": "❌ {name} — 研究者已否决：{reason}",
    },
    "legend_awaiting": {
        "en": "⚖️ {name} — awaiting the investigator's decision",
        "zh": "⚖️ {name} — 待研究者裁定",
    },
    "legend_not_reached": {
        "en": "⏹ {name} — not reached (screening stopped)",
        "zh": "⏹ {name} — 未询问（筛选已终止）",
    },
    "legend_pending": {"en": "❓ {name} — result pending", "zh": "❓ {name} — 结果待出"},
    "legend_not_applicable": {"en": "➖ {name} — not applicable", "zh": "➖ {name} — 不适用"},
    # --- How a criterion came out, in transcripts.
    "outcome_met": {"en": "met", "zh": "满足"},
    "outcome_not_met": {"en": "not met", "zh": "未满足"},
    "outcome_unknown": {"en": "unknown", "zh": "未知"},
    "outcome_not_applicable": {"en": "not applicable", "zh": "不适用"},
    # --- How a screening was closed.
    "close_signed": {"en": "signed", "zh": "已签署"},
    "close_cancelled": {"en": "cancelled", "zh": "已取消"},
    "close_exclusion_confirmed": {"en": "exclusion confirmed", "zh": "已确认排除"},
    "close_not_completed": {"en": "closed as not completed", "zh": "以未完成关闭"},
    # --- Transcripts: the PDF's labels and the events' descriptions (reports/).
    "pdf_title": {"en": "Screening transcript {code}", "zh": "筛选记录 {code}"},
    "pdf_failed": {
        "en": "FAILED VERIFICATION: the stored record does not match its audit trail.",
        "zh": "核验失败：存储的记录与其审计轨迹不一致。",
    },
    "pdf_trial": {
        "en": "Trial {id} · registry {registry} · protocol version {version}",
        "zh": "试验 {id} · 注册号 {registry} · 方案版本 {version}",
    },
    "pdf_registry_none": {"en": "not given", "zh": "未提供"},
    "pdf_digest": {"en": "Protocol sha256 {digest}", "zh": "方案 sha256 {digest}"},
    "pdf_status": {
        "en": "Status: {status}. Started {utc} UTC ({local} {zone}).",
        "zh": "状态：{status}。开始于 {utc} UTC（{local} {zone}）。",
    },
    "pdf_signed": {
        "en": "Signed by {name} ({role}, Telegram {telegram_id}) on {at} UTC: “{meaning}”",
        "zh": "由 {name}（{role}，Telegram {telegram_id}）于 {at} UTC 签署：“{meaning}”",
    },
    "pdf_closed": {"en": "Closed ({how}){reason}.", "zh": "已关闭（{how}）{reason}。"},
    "pdf_outcome": {"en": "Outcome", "zh": "结论"},
    "pdf_criteria": {"en": "Criteria", "zh": "标准"},
    "pdf_criterion": {"en": "Criterion {number}: {outcome}", "zh": "标准 {number}：{outcome}"},
    "pdf_events": {"en": "Events (who, what, when)", "zh": "事件（何人、何事、何时）"},
    "pdf_chain": {"en": "Audit chain", "zh": "审计链"},
    "pdf_chain_verified": {"en": "verified", "zh": "已核验"},
    "pdf_chain_broken": {
        "en": "BROKEN at event {seq}: {problem}",
        "zh": "在事件 {seq} 处断裂：{problem}",
    },
    "pdf_chain_summary": {
        "en": "{checked} events, {verdict}. Head hash {head}",
        "zh": "共 {checked} 个事件，{verdict}。链头哈希 {head}",
    },
    "pdf_header": {
        "en": "{id} v{version} · Screening {code}",
        "zh": "{id} v{version} · 筛选 {code}",
    },
    "pdf_generated": {"en": "generated {at} UTC", "zh": "生成于 {at} UTC"},
    "pdf_chain_head": {"en": "Audit chain head {head}", "zh": "审计链头 {head}"},
    "pdf_page": {"en": "Page {number} of {total}", "zh": "第 {number} 页，共 {total} 页"},
    "event_started": {
        "en": "Screening started on protocol {protocol} v{version} (sha256 {digest})",
        "zh": "按方案 {protocol} v{version}（sha256 {digest}）开始筛选",
    },
    "event_started_pass": {
        "en": "; screened in pass {code} together with {codes}",
        "zh": "；在 {code} 中与 {codes} 一同筛选",
    },
    "event_answered": {
        "en": "{label}:{wording} answered “{raw}” = {value}",
        "zh": "{label}：{wording} 回答“{raw}” = {value}",
    },
    "event_corrected": {
        "en": "{label} changed from {previous} to {value} (entered “{raw}”); reason for change: {reason}",
        "zh": "{label} 由 {previous} 改为 {value}（输入“{raw}”）；更改原因：{reason}",
    },
    "event_no_reason": {"en": "none given", "zh": "未提供"},
    "event_retired": {
        "en": "{label}: answer retired (question no longer relevant)",
        "zh": "{label}：答案已停用（问题不再适用）",
    },
    "event_decision": {
        "en": "Investigator decision on criterion {number}: {verdict} — {reason}",
        "zh": "研究者对标准 {number} 的裁定：{verdict} — {reason}",
    },
    "event_decision_withdrawn": {
        "en": "Withdrawn (answers changed): investigator decision on criterion {number}: {verdict} — {reason}",
        "zh": "已撤回（答案已更改）：研究者对标准 {number} 的裁定：{verdict} — {reason}",
    },
    "event_went_back": {"en": "Went back to {label} to change it", "zh": "返回 {label} 以修改"},
    "event_completing": {"en": "Completing the answers that were pending", "zh": "补充待定的答案"},
    "event_signed": {"en": "Signed: “{meaning}”", "zh": "已签署：“{meaning}”"},
    "event_cancelled": {"en": "Screening cancelled: {reason}", "zh": "筛选已取消：{reason}"},
    "event_exclusion_confirmed": {
        "en": "Exclusion confirmed; screening closed{reason}",
        "zh": "已确认排除；筛选已关闭{reason}",
    },
    "event_not_completed": {
        "en": "Screening closed as not completed: {reason}",
        "zh": "筛选以未完成关闭：{reason}",
    },
    "event_excluded_by": {"en": " (criterion {numbers} not met)", "zh": "（未满足标准 {numbers}）"},
    # --- Answer values in words (flows.showing).
    "value_yes": {"en": "yes", "zh": "是"},
    "value_no": {"en": "no", "zh": "否"},
    "value_unknown": {"en": "unknown / pending", "zh": "未知 / 待定"},
}

CATALOGUE: Mapping[str, Mapping[Lang, str]] = {**_SHOWN, **CHAT}


def tr(key: str, lang: Lang, **params: object) -> str:
    """The wording of ``key`` in ``lang``, with ``params`` filled in.

    Raises:
        KeyError: No such key (a programming error, caught by the catalogue's test).
    """
    entry = CATALOGUE[key]
    return entry[lang].format(**params)
