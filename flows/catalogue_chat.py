"""The chat's own wording, in English and Simplified Chinese: part of :mod:`flows.catalogue`.

The command menu, checklists and the lab panel, pending results and reminders, review
requests, and every reply of the bot. Looked up with :func:`flows.catalogue.tr`.
"""

from __future__ import annotations

from collections.abc import Mapping

from flows.text import Lang

CHAT: Mapping[str, Mapping[Lang, str]] = {
    # --- The command menu Telegram shows (bot.application.MENU).
    "menu_new": {"en": "Start a screening", "zh": "开始筛选"},
    "menu_resume": {"en": "My unfinished screenings", "zh": "未完成的筛选"},
    "menu_status": {"en": "Where the screening stands", "zh": "当前进度"},
    "menu_back": {"en": "Change an earlier answer", "zh": "修改之前的答案"},
    "menu_cancel": {"en": "Abandon the screening", "zh": "放弃筛选"},
    "menu_review": {"en": "Screenings awaiting a decision", "zh": "待裁定的筛选"},
    "menu_help": {"en": "How to use the bot", "zh": "使用说明"},
    "menu_language": {"en": "English / 中文", "zh": "English / 中文"},
    "menu_staff": {"en": "Manage staff (admins)", "zh": "管理人员（管理员）"},
    "menu_start": {"en": "Who I am", "zh": "我是谁"},
    # --- Checklists and the lab panel (bot.screens).
    "checklist_intro": {
        "en": "Routine questions: the answer shown for each is the one that excludes no one. Tap an item to change its answer, then record them.",
        "zh": "常规问题：每项显示的是不会排除受试者的答案。点按某项可更改其答案，然后记录。",
    },
    "checklist_item": {"en": "{number}. {text} — {answer}", "zh": "{number}. {text} — {answer}"},
    "checklist_changed": {
        "en": "{number}. {text} — {answer} ✏️",
        "zh": "{number}. {text} — {answer} ✏️",
    },
    "b_all_true": {"en": "✅ All {count} as shown", "zh": "✅ {count} 项全部如上"},
    "b_record_checklist": {"en": "✔ Record these answers", "zh": "✔ 记录这些答案"},
    "b_check_item": {"en": "{number}. {label}: {answer}", "zh": "{number}. {label}：{answer}"},
    "checklist_recorded": {
        "en": "✔ {label}: {answer} (checklist)",
        "zh": "✔ {label}：{answer}（清单）",
    },
    "panel_invite": {
        "en": "💡 Type the values of the next questions in one message, each after its label as on the report ({labels}), e.g. “{example}”. I show back what I read before anything is recorded.",
        "zh": "💡 可在一条消息中按化验单输入后续各题的数值，每项前加标签（{labels}），例如“{example}”。记录前我会逐项回显。",
    },
    "checklist_offer": {
        "en": "Or answer these {count} routine questions at once, as shown (each answer is the one that excludes no one):",
        "zh": "或按下列答案一次回答这 {count} 个常规问题（每项答案均不会排除受试者）：",
    },
    "b_change_items": {"en": "✏️ Change an item", "zh": "✏️ 更改某项"},
    # --- Pending results: /pending and reminders; review requests.
    "menu_pending": {"en": "Screenings waiting for a result", "zh": "等待结果的筛选"},
    "pending_list": {
        "en": "Your screenings waiting for a result, the longest waiting first:",
        "zh": "您等待结果的筛选（等待最久的在前）：",
    },
    "pending_none": {
        "en": "None of your screenings is waiting for a result.",
        "zh": "您没有等待结果的筛选。",
    },
    "pending_item": {"en": "{code} · {missing} · {ago}", "zh": "{code} · {missing} · {ago}"},
    "b_remind": {"en": "⏰ {when}", "zh": "⏰ {when}"},
    "remind_1": {"en": "Tomorrow", "zh": "明天"},
    "remind_3": {"en": "In 3 days", "zh": "3 天后"},
    "remind_7": {"en": "In a week", "zh": "一周后"},
    "remind_offer": {"en": "Remind me to enter the results:", "zh": "提醒我录入结果："},
    "reminder_set": {
        "en": "I will remind you of screening {code} on {date} UTC.",
        "zh": "我将于 {date} UTC 提醒您筛选 {code}。",
    },
    "reminder": {
        "en": "⏰ Screening {code} is waiting for: {missing}. Have the results arrived?",
        "zh": "⏰ 筛选 {code} 正在等待：{missing}。结果出来了吗？",
    },
    "b_open": {"en": "Open {code}", "zh": "打开 {code}"},
    "notified": {"en": "Investigators notified: {who}.", "zh": "已通知的研究者：{who}。"},
    "notified_one": {"en": "{name} ({at} UTC)", "zh": "{name}（{at} UTC）"},
    "notify_review_full": {
        "en": "Screening {code} needs your decision.\n\n{screen}",
        "zh": "筛选 {code} 需要您的裁定。\n\n{screen}",
    },
    # --- The bot's own wording (bot/).
    "welcome": {
        "en": "Hello {name}, you are registered as {role}.\nI walk you through a trial's eligibility criteria one question at a time, store every answer and stop as soon as the patient is excluded.\n\n{help}",
        "zh": "您好 {name}，您的角色是 {role}。\n我会逐题引导您完成试验入选标准筛查，保存每个答案，一旦患者被排除即停止。\n\n{help}",
    },
    "help": {
        "en": "/new – start a screening (screening code only, never a name)\n/resume – my unfinished screenings\n/pending – my screenings waiting for a result\n/status – where the screening stands\n/back – change an earlier answer\n/cancel – abandon the screening\n/review – screenings awaiting an investigator (investigators)\n/export – the transcript of a screening (PDF and JSON)\n/staff – manage staff (admins)\n/language – English / 中文\n\nType numbers as printed on the lab report, e.g. 9.5 g/dL or 1200/µL; several at once: “Hb 9.5 g/dL, ANC 1200/µL, PLT 150”. 'unknown' is always accepted.",
        "zh": "/new – 开始筛选（仅用筛选编号，勿用姓名）\n/resume – 我未完成的筛选\n/pending – 等待结果的筛选\n/status – 当前进度\n/back – 修改之前的答案\n/cancel – 放弃筛选\n/review – 待研究者裁定的筛选（研究者）\n/export – 导出筛选记录（PDF 与 JSON）\n/staff – 管理人员（管理员）\n/language – English / 中文\n\n请按化验单填写数值，例如 9.5 g/dL 或 1200/µL；可一次输入多项：“Hb 9.5 g/dL, ANC 1200/µL, PLT 150”。随时可回答“未知”。",
    },
    "stranger": {
        "en": "Sorry, this bot is only for authorised research staff. Please ask your study administrator to register your Telegram account (id {id}).",
        "zh": "抱歉，本机器人仅供授权研究人员使用。请联系研究管理员登记您的 Telegram 账号（ID {id}）。",
    },
    "role_needed": {"en": "This needs the {role} role.", "zh": "此操作需要{role}角色。"},
    "ask_code": {"en": "Screening code of the new screening?", "zh": "请输入新筛选的筛选编号："},
    "choose_trial": {"en": "Which trial?", "zh": "哪个试验？"},
    "b_all_trials": {"en": "All {n} trials together", "zh": "全部 {n} 个试验一起筛选"},
    "choose_trials": {
        "en": "Which trials? Every active trial is ticked: tap one to leave it out, then start. Questions the trials share are asked once.",
        "zh": "筛选哪些试验？所有在研试验均已勾选：点击可取消，然后开始。各试验共同的问题只问一次。",
    },
    "b_start_trials": {"en": "▶ Start ({n})", "zh": "▶ 开始（{n}）"},
    "no_trial_ticked": {"en": "Tick at least one trial.", "zh": "请至少勾选一个试验。"},
    "started_pass": {
        "en": "Screening {code} started against {n} trials, shared questions asked once:\n{trials}",
        "zh": "筛选 {code} 已开始，同时筛选 {n} 个试验，共同的问题只问一次：\n{trials}",
    },
    "pass_decided": {
        "en": "Every trial is decided. Each is closed on its own: open the others with /resume.",
        "zh": "所有试验均已得出结论。每个试验需分别完成：用 /resume 打开其他试验。",
    },
    "started": {
        "en": "Screening {code} started ({trial}).",
        "zh": "筛选 {code} 已开始（{trial}）。",
    },
    "no_current": {
        "en": "No screening in progress. Start one with /new or continue with /resume.",
        "zh": "当前没有进行中的筛选。请用 /new 开始或用 /resume 继续。",
    },
    "no_unfinished": {"en": "You have no unfinished screenings.", "zh": "您没有未完成的筛选。"},
    "unfinished": {"en": "Your unfinished screenings:", "zh": "您未完成的筛选："},
    "outdated": {
        "en": "That button is outdated; nothing was recorded. Here is where screening {code} stands now.",
        "zh": "该按钮已过期，未记录任何内容。以下是筛选 {code} 的当前状态。",
    },
    "outdated_short": {"en": "Outdated button: nothing recorded.", "zh": "按钮已过期，未记录。"},
    "other_screening": {
        "en": "That button belongs to screening {code}, which you have put aside; nothing was recorded. Use /resume to continue it.",
        "zh": "该按钮属于您已暂停的筛选 {code}，未记录任何内容。如需继续，请使用 /resume。",
    },
    "review_use_buttons": {
        "en": "To decide, tap Approve or Reject under the criterion; you will then be asked for the reason. (/review lists the screenings awaiting a decision.)",
        "zh": "如需裁定，请点击标准下方的“批准”或“否决”，随后填写理由。（/review 列出待裁定的筛选。）",
    },
    "export_failed": {
        "en": "⚠️ Transcript of {code}: FAILED VERIFICATION. The stored record does not match its audit trail; the transcript says where. Tell your administrator.",
        "zh": "⚠️ 筛选 {code} 的记录未通过校验：存储的记录与审计轨迹不符，详见记录。请告知管理员。",
    },
    "private_only": {
        "en": "I work only in a private chat with research staff: screening data has no place in a group. Please write to me directly.",
        "zh": "我只在与研究人员的私聊中工作：筛选数据不应出现在群组中。请直接私聊我。",
    },
    "view_only": {
        "en": "Someone else's screening, shown to read: only the person who started it can answer or close it.",
        "zh": "他人的筛选，仅供查看：只有发起人可以作答或关闭。",
    },
    "not_yours": {"en": "You may not open screening {code}.", "zh": "您无权查看筛选 {code}。"},
    "changed_elsewhere": {
        "en": "Screening {code} was changed on another device; nothing was recorded. It now stands here:",
        "zh": "筛选 {code} 已在其他设备上更改，本次未记录。当前状态如下：",
    },
    "saved": {"en": "✔ {echo}", "zh": "✔ {echo}"},
    "confirm_value": {"en": "{question}\nRecord it?", "zh": "{question}\n是否记录？"},
    "batch": {
        "en": "I read:\n{items}\nRecord these values?",
        "zh": "识别到：\n{items}\n是否记录这些数值？",
    },
    "batch_invalid": {"en": "Not recorded — {label}: {hint}", "zh": "未记录 — {label}：{hint}"},
    "batch_missing": {
        "en": "Still to come (asked in turn): {labels}",
        "zh": "尚未提供（将逐题询问）：{labels}",
    },
    "prefilled": {
        "en": "✔ {label}: {echo} (from your earlier message)",
        "zh": "✔ {label}：{echo}（来自您之前的消息）",
    },
    "current_answer": {"en": "Current answer: {answer}", "zh": "当前答案：{answer}"},
    "back_choose": {"en": "Which answer do you want to change?", "zh": "您要修改哪个答案？"},
    "nothing_to_change": {"en": "No answers yet.", "zh": "尚无答案。"},
    "reason_ask": {
        "en": "Reason for changing {question} from “{old}” to “{new}”? Tap one or type it.",
        "zh": "将{question}从“{old}”改为“{new}”的原因？请选择或输入。",
    },
    "reason_typed_ask": {"en": "Type the reason.", "zh": "请输入原因。"},
    "excluded_actions": {
        "en": "Confirm the exclusion, or correct the answer if it was entered wrongly.",
        "zh": "请确认排除；如答案录入有误，请更正。",
    },
    "exclusion_confirmed": {
        "en": "Exclusion of {code} confirmed. Screening closed.",
        "zh": "已确认排除 {code}，筛选已关闭。",
    },
    "sign_prompt": {
        "en": "Sign to confirm: “I confirm these answers reflect the source documents.”",
        "zh": "请签署确认：“我确认这些答案与源文件一致。”",
    },
    "signed": {
        "en": "Screening {code} signed by {name} and closed.",
        "zh": "筛选 {code} 已由 {name} 签署并关闭。",
    },
    "pending_actions": {
        "en": "When the results arrive, tap “Results arrived” to answer the pending questions.",
        "zh": "结果出来后，请点击“结果已出”补充待定问题。",
    },
    "review_waiting": {
        "en": "The investigators have been asked to decide.",
        "zh": "已请研究者裁定。",
    },
    "review_none": {"en": "No screenings await a decision.", "zh": "没有待裁定的筛选。"},
    "review_list": {"en": "Screenings awaiting your decision:", "zh": "待您裁定的筛选："},
    "decision_reason": {
        "en": "Reason for your decision on criterion {number} ({verdict})? Type it.",
        "zh": "请输入您对标准 {number} 裁定（{verdict}）的理由。",
    },
    "decided": {"en": "Decision recorded for {code}.", "zh": "已记录对 {code} 的裁定。"},
    "notify_review": {
        "en": "Screening {code} needs your decision: /review",
        "zh": "筛选 {code} 需要您的裁定：/review",
    },
    "notify_decided": {
        "en": "{name} decided on screening {code}: criterion {number} {verdict} — {reason}",
        "zh": "{name} 已裁定筛选 {code}：标准 {number} {verdict} — {reason}",
    },
    "cancel_reason": {
        "en": "Why abandon screening {code}? Type the reason.",
        "zh": "为何放弃筛选 {code}？请输入原因。",
    },
    "cancelled": {"en": "Screening {code} cancelled.", "zh": "筛选 {code} 已取消。"},
    "closed_not_completed": {
        "en": "Screening {code} closed as not completed.",
        "zh": "筛选 {code} 已以“未完成”关闭。",
    },
    "not_completed_reason": {
        "en": "Why can this screening not be completed (e.g. the patient withdrew, the result will not come)? Type the reason.",
        "zh": "为何无法完成本次筛选（例如患者退出、结果不会出来）？请输入原因。",
    },
    "language_choose": {"en": "Language?", "zh": "语言？"},
    "language_set": {"en": "English it is.", "zh": "已切换为中文。"},
    "error": {
        "en": "Sorry, something went wrong (reference {ref}). Nothing was half-saved; please try again.",
        "zh": "抱歉，出现错误（编号 {ref}）。没有保存不完整的数据，请重试。",
    },
    "db_unavailable": {
        "en": "The database cannot be reached right now, so nothing was recorded (reference {ref}). Please try again in a minute.",
        "zh": "暂时无法连接数据库，本次未记录任何内容（编号 {ref}）。请稍后重试。",
    },
    "unknown_command": {
        "en": "I do not know that command. /help lists what I can do.",
        "zh": "无此命令。/help 列出可用功能。",
    },
    "staff_usage": {
        "en": "/staff list\n/staff add TELEGRAM_ID NAME [coordinator|investigator|admin]\n/staff remove TELEGRAM_ID",
        "zh": "/staff list\n/staff add TELEGRAM_ID 姓名 [coordinator|investigator|admin]\n/staff remove TELEGRAM_ID",
    },
    "staff_saved": {"en": "{id} {name}: {role}, {state}.", "zh": "{id} {name}：{role}，{state}。"},
    "staff_unknown": {"en": "{id} is not a staff member.", "zh": "{id} 不是工作人员。"},
    "active": {"en": "active", "zh": "有效"},
    "removed": {"en": "access withdrawn", "zh": "已停用"},
    "approved": {"en": "approved", "zh": "批准"},
    "rejected": {"en": "rejected", "zh": "否决"},
    "export_usage": {
        "en": "Send /export CODE, or /export while working on a screening.",
        "zh": "请发送 /export 筛选编号，或在筛选过程中发送 /export。",
    },
    "export_caption": {
        "en": "Transcript of screening {code} (PDF; the JSON carries the audit chain).",
        "zh": "筛选 {code} 的记录（PDF；JSON 含审计链）。",
    },
    "b_yes": {"en": "Yes", "zh": "是"},
    "b_no": {"en": "No", "zh": "否"},
    "b_unknown": {"en": "Unknown / pending", "zh": "未知 / 待定"},
    "b_back": {"en": "◀ Back", "zh": "◀ 返回"},
    "b_record": {"en": "✔ Record", "zh": "✔ 记录"},
    "b_retype": {"en": "✖ Retype", "zh": "✖ 重新输入"},
    "b_confirm_exclusion": {"en": "Confirm exclusion", "zh": "确认排除"},
    "b_correct": {"en": "Correct an answer", "zh": "更正答案"},
    "b_sign": {"en": "✍ Sign", "zh": "✍ 签署"},
    "b_results": {"en": "Results arrived", "zh": "结果已出"},
    "b_not_completed": {"en": "Close as not completed", "zh": "以未完成关闭"},
    "b_approve": {"en": "Approve {number}", "zh": "批准 {number}"},
    "b_reject": {"en": "Reject {number}", "zh": "否决 {number}"},
    "b_other": {"en": "Other (type it)", "zh": "其他（输入）"},
    "r_transcription": {"en": "Transcription error", "zh": "录入错误"},
    "r_new_result": {"en": "New or repeated lab result", "zh": "新的或复查结果"},
    "r_source": {"en": "Source document misread", "zh": "源文件误读"},
    "r_clarified": {"en": "Clarified with the investigator", "zh": "经研究者澄清"},
}
