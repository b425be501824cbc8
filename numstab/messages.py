# ruff: noqa: E501  (message tables: a sentence per entry, CJK text counts double on screen)
"""What the tour and its report say, in English and in Chinese: one message table per language.

:data:`MESSAGES` holds one table per language, with the same keys (a test checks it); :func:`tr` looks a
message up and fills its ``{fields}``. The Chinese table quotes the Chinese edition of the chapter and the
lecture in their own words (``shared/seeds``: the D2L section 数值稳定性和模型初始化, the lecture notes
and transcript). :data:`PHRASES` translates the short English phrases that results carry as data (the
chapter's claims in the lab's tables, regime words): English is the message id, as in gettext, and a
phrase missing from a language's table shows in English.

Examples:
    >>> tr("label.chapter", "zh")
    '本章'
    >>> tr("cli.written", "en", seconds=1.5, folder="out")
    'Report written in 1.5 s to out/ (index.html, report.json)'
    >>> phrase("reasonable", "zh"), phrase("reasonable", "en"), phrase("not in the table", "zh")
    ('合理', 'reasonable', 'not in the table')
"""

from __future__ import annotations

from typing import Any

from numstab.errors import UnknownNameError

__all__ = ["LANGUAGES", "MESSAGES", "PHRASES", "tr", "phrase", "check_lang", "html_lang"]

#: The languages of the tour and its report; English is the default.
LANGUAGES = ("en", "zh")

_EN: dict[str, str] = {
    # the page and the terminal
    "tour.title": "numstab tour",
    "tour.subtitle": "D2L Numerical Stability, at {mode}",
    "tour.quick": "quick settings",
    "tour.chapter": "the chapter's settings",
    "cli.written": "Report written in {seconds:.1f} s to {folder}/ (index.html, report.json)",
    "cli.replaced": "Replaced the earlier report in {folder}/: {files}",
    "html.contents": "Contents",
    "html.footer": "Written by numstab {version}. Self-contained: it makes no network request.",
    # section labels
    "label.chapter": "The chapter",
    "label.theory": "Theory",
    "label.measured": "Measured",
    "label.columns": "Columns",
    "label.notes": "Where the measurement and the chapter part, and why",
    "label.reproduce": "Reproduce it",
    "label.exercise4": "Exercise 4 (LARS)",
    # the lab tables' columns
    "col.quantity": "quantity",
    "col.chapter": "what the chapter says",
    "col.measured": "measured",
    "col.theory": "theory",
    "col.regime": "regime",
    "col.agrees": "agrees with the chapter?",
    "col.chapter.short": "the chapter",
    "col.agrees.short": "agrees?",
    "def.chapter": "the book or the lecture, in its words; '-' where it says nothing",
    "def.measured": "what numstab measured at these settings",
    "def.theory": "what theory predicts (closed form, mean-field or random-matrix theory)",
    "def.regime": "vanishing below 1e-3, exploding above 1e3; for a number format, where the value lands",
    "def.agrees": "yes / no by the rule the result's comparisons() states; where the chapter is silent, "
    "'theory: yes/no' says whether the measurement agrees with the theory",
    # the training tables' columns
    "def.accuracy": "mean test accuracy over the seeds (chance is 0.1: ten digits)",
    "def.bottom": "how far the input layer moved: ||θ_end − θ_0|| / ||θ_0||; near 0, the bottom layer did not "
    "train (its gradient vanished)",
    "def.fails": "the first step whose loss was inf or NaN, and how many seeds failed",
    "def.effect": "the remedy's accuracy minus the untreated deep network's",
    "def.xi": "the depth over which correlations between inputs survive (mean-field theory)",
    "def.6xi": "the deepest network theory lets train (Schoenholz et al. 2017)",
    "def.deepest": "the deepest network that reached accuracy {accuracy:g}; '-' if none did",
    "def.verdict": "trainable / untrainable / diverged; on the map: agrees (the deepest trained is within "
    "6 xi_c), disagrees, or nothing trained (that column tests nothing)",
    "lars.link": "layer-wise adaptive rates against plain SGD on this exploding deep net: "
    "training.remedies(['lars'], depth=15, steps=200, seeds=[0]) or `numstab lab training -e remedies "
    "--remedies lars`; the tour's exercises section runs it.",
    # section titles
    "title.activation-curves": "Vanishing gradients: sigmoid and friends",
    "title.matrix-products": "Exploding products of random matrices",
    "title.mlp-gradients": "The 50-layer synthetic MLP gradient",
    "title.taylor": "Which activations look like the identity near 0",
    "title.xavier": "Xavier initialization, measured",
    "title.symmetry": "Breaking the symmetry",
    "title.precision": "Number formats: where products leave the range",
    "title.exercises": "The chapter's exercises, answered",
    "title.training": "Training on real data (digits)",
    "title.training-depth": "Depth x init x activation on the digits",
    "title.training-lr": "The learning-rate window",
    "title.training-remedies": "Remedies at depth",
    "title.training-map": "Trainability map beside 6 xi_c",
    # what the chapter says, per section
    "chapter.activation-curves": "The book plots sigmoid and its gradient on arange(-8, 8, 0.1): the gradient "
    "is at most 0.25 and about 3.35e-4 at the ends. \"As you can see, the sigmoid's gradient vanishes both "
    "when its inputs are large and when they are small.\"",
    "chapter.matrix-products": "The book multiplies a 4x4 N(0,1) matrix by 100 more and prints entries near "
    "1e22: \"For the scale that we picked (the choice of the variance σ² = 1), the matrix product "
    "explodes.\" The lecture's prod_random_matrices gives ~1e-6 at scale 0.5 and ~1e9-1e10 at 0.7.",
    "chapter.mlp-gradients": "The lecture accumulates y <- f'(a) * (W^T y) through 50 layers of width 100, "
    "10 repeats: ReLU gives 1e-9 at scale 0.1, is \"reasonable\" at 0.2 and explodes from 0.4; sigmoid "
    "vanishes at every scale; 4 sigmoid - 2 is stable near 0.1.",
    "chapter.taylor": "tanh and relu pass, sigmoid fails, 4 sigmoid(x) - 2 passes.",
    "chapter.xavier": "Var[o] = n_in σ² γ² forward, n_out σ² backward: \"Typically, the Xavier initialization "
    "samples weights from a Gaussian distribution with zero mean and variance σ² = 2/(n_in + n_out).\"",
    "chapter.symmetry": "Two hidden units with constant init stay identical under SGD: \"Note that while "
    "minibatch stochastic gradient descent would not break this symmetry, dropout regularization would!\"",
    "chapter.precision": "1.5^100 ~ 4e17 and 0.8^100 ~ 2e-10 against float16's 65504 and 2^-24 ~ 6e-8.",
    "chapter.exercises": "1. Other symmetries to break besides an MLP's permutation symmetry? 2. May "
    "linear or softmax regression start from equal weights? 3. Bounds on the singular values of a product "
    "of matrices: what keeps gradients well conditioned? 4. Can divergence be fixed after the fact (LARS)?",
    "chapter.training-depth": "N(0, 0.01) is fine for small nets but starves deep sigmoid nets of gradient; "
    "Xavier keeps the variance of activations and gradients, and a large init makes values explode to inf.",
    "chapter.training-lr": "A poor init leaves only a narrow learning-rate window; too large a rate gives inf, "
    "then NaN.",
    "chapter.training-remedies": "Remedies: ReLU, residual connections (add instead of multiply), "
    "normalization, gradient clipping, careful init, layer-wise adaptive rates (LARS, the chapter's "
    "exercise).",
    "chapter.training-map": "Beyond the chapter: Schoenholz et al. (2017) predict that a random network "
    "trains only while its depth stays below about 6 xi_c, the depth over which input correlations survive.",
    # notes: one sentence per disagreement
    "note.mlp": "{act} at {init}: the lecture says {claim!r}, but σ_w = scale · √{width} = "
    "{sigma_w:.3g} gives χ₁ = {chi:.3g} per layer, so the squared gradient {trend} {chi:.3g}x a layer: "
    "{theory} predicted, {measured} measured after {depth} layers ({regime}).",
    "note.mlp.silent": "{act} at {init}: theory predicts σ_w = scale · √{width} = {sigma_w:.3g} gives "
    "χ₁ = {chi:.3g} per layer, so the squared gradient {trend} {chi:.3g}x a layer: {theory} predicted, "
    "{measured} measured after {depth} layers ({regime}).",
    "measured.mlp-gradients": "‖Y_L‖_F / √K after the last layer (mean of log10 over repeats), the "
    "lecture's smallest non-zero |entry| in brackets; theory: the mean-field product of χ_l^½ from the "
    "input's variance (χ₁^(L/2) once at the fixed point)",
    "measured.symmetry": "max |unit 1 - unit 2| over W1 rows, b1 and W2 after the last SGD step",
    "note.taylor": "{name}: the chapter says {claim}, measured f(0) = {f0}, f'(0) = {df0}.",
    "note.stuck": "{power} in {fmt} never reaches 0: once subnormal, rounding to nearest gives {base} * x = x, "
    "so the product sticks at {computed}, {factor:.0f}x the exact value: wrong, as the chapter warns, though "
    "not flushed.",
    "note.lyapunov": "The singular values of a product of {factors} Gaussian factors spread at the rates "
    "lambda_1 - lambda_{k} = {spread:.3f} per factor: the condition number reaches ~1e{log10:.0f} at any "
    "scale, while orthogonal factors keep it at 1; only an isometric (orthogonal) initialization keeps every "
    "gradient direction alike.",
}

_ZH: dict[str, str] = {
    "tour.title": "numstab 导览",
    "tour.subtitle": "《动手学深度学习》数值稳定性和模型初始化，{mode}",
    "tour.quick": "快速设置",
    "tour.chapter": "本章的设置",
    "cli.written": "报告用时 {seconds:.1f} 秒，写入 {folder}/（index.html、report.json）",
    "cli.replaced": "已替换 {folder}/ 中先前的报告：{files}",
    "html.contents": "目录",
    "html.footer": "由 numstab {version} 生成。自包含：不发出任何网络请求。",
    "label.chapter": "本章",
    "label.theory": "理论",
    "label.measured": "测量",
    "label.columns": "各列",
    "label.notes": "测量与本章不一致之处及原因",
    "label.reproduce": "复现",
    "label.exercise4": "练习 4（LARS）",
    "col.quantity": "量",
    "col.chapter": "本章怎么说",
    "col.measured": "测量值",
    "col.theory": "理论值",
    "col.regime": "区间",
    "col.agrees": "与本章一致？",
    "col.chapter.short": "本章",
    "col.agrees.short": "一致？",
    "def.chapter": "书或课程的原话；本章未提及处为 '-'",
    "def.measured": "numstab 在这些设置下测得的值",
    "def.theory": "理论的预测（闭式解、平均场理论或随机矩阵理论）",
    "def.regime": "低于 1e-3 为消失，高于 1e3 为爆炸；对数值格式而言，是数值落在哪里",
    "def.agrees": "按结果的 comparisons() 所述规则判为 是 / 否；本章未提及时，“理论：是/否”表示测量是否与理论一致",
    "def.accuracy": "各随机种子的平均测试准确率（十个数字，随机猜为 0.1）",
    "def.bottom": "输入层移动了多少：||θ_end − θ_0|| / ||θ_0||；接近 0 表示底层没有训练（它的梯度消失了）",
    "def.fails": "损失第一次为 inf 或 NaN 的步数，以及失败的种子数",
    "def.effect": "该补救方法的准确率减去未处理的深层网络的准确率",
    "def.xi": "输入之间的相关性能保持的深度（平均场理论）",
    "def.6xi": "理论允许训练的最深网络（Schoenholz 等，2017）",
    "def.deepest": "准确率达到 {accuracy:g} 的最深网络；没有则为 '-'",
    "def.verdict": "可训练 / 不可训练 / 发散；在图上：一致（训练成功的最深网络在 6 xi_c 以内）、不一致，或没有网络训练成功"
    "（该列无从检验）",
    "lars.link": "在这个梯度爆炸的深层网络上，分层自适应学习率对比普通 SGD："
    "training.remedies(['lars'], depth=15, steps=200, seeds=[0]) 或 `numstab lab training -e remedies "
    "--remedies lars`；导览的“练习”一节运行了它。",
    "title.activation-curves": "梯度消失：sigmoid 及其同类",
    "title.matrix-products": "随机矩阵乘积的爆炸",
    "title.mlp-gradients": "50 层合成 MLP 的梯度",
    "title.taylor": "哪些激活函数在零点附近像恒等函数",
    "title.xavier": "Xavier 初始化，实测",
    "title.symmetry": "打破对称性",
    "title.precision": "数值格式：乘积在哪里超出范围",
    "title.exercises": "本章的练习，用计算回答",
    "title.training": "在真实数据（手写数字）上训练",
    "title.training-depth": "手写数字上的深度 × 初始化 × 激活函数",
    "title.training-lr": "学习率的窗口",
    "title.training-remedies": "深层网络的补救方法",
    "title.training-map": "可训练性图与 6 xi_c",
    "chapter.activation-curves": "书中在 arange(-8, 8, 0.1) 上画出 sigmoid 及其梯度：梯度最大为 0.25，两端约为 "
    "3.35e-4。“正如你所看到的，当它的输入很大和它们很小时，sigmoid 的梯度都会消失。”",
    "chapter.matrix-products": "书中把一个 4x4 的 N(0,1) 矩阵再乘以 100 个矩阵，打印出接近 1e22 的元素："
    "“对于我们选择的尺度（方差 σ²=1 的选择），矩阵积爆炸。”课程中缩放比例 0.5 时“所有的值都很小，都是 1 E-6”，"
    "0.7 时“结果接近 1 E+10”。",
    "chapter.mlp-gradients": "课程把 y <- f'(a) * (W^T y) 累积穿过 50 个宽度为 100 的层，重复 10 次：“对于0.1，"
    "结果为1e-9，对于0.2是合理的”，“如果我们再将规模加倍，梯度就变得很大”；sigmoid 在每个尺度都消失；"
    "4 sigmoid - 2 在 0.1 附近稳定。",
    "chapter.taylor": "“使用泰勒展开，tanh和relu在零点附近是近似到f(x)=x, identity函数。……sigmoid不行，需要调整为"
    "4*sigmoid(x)-2.”",
    "chapter.xavier": "“通常，Xavier 初始化从平均值为零且方差为 σ² = 2/(n_in + n_out) 的高斯分布中采样权重。”"
    "正向 Var[o] = n_in σ² γ²，反向 n_out σ²。",
    "chapter.symmetry": "常数初始化的两个隐藏单元在 SGD 下始终相同：“请注意，虽然迷你批次随机梯度下降不会破坏这种"
    "对称性，但丢弃法正则化会！”",
    "chapter.precision": "学习笔记：1.5^100 ≈ 4e17，0.8^100 ≈ 2e-10，“两者都远远超出了常用的16位浮点数能表示的最大值 "
    "65504 和最小精度 2^-24≈6e(-8)”。",
    "chapter.exercises": "1. 你能否设计其他情况，神经网络可能表现出对称性，除了 MLP 层中的排列对称性之外，还需要打破？"
    "2. 我们可以将线性回归或 softmax 回归中的所有权重参数初始化为相同的值吗？3. 查找两个矩阵积的特征值的分析界限。"
    "这告诉你什么确保渐变条件良好？4. 如果我们知道某些术语有发散，我们可以在事后解决这个问题吗？",
    "chapter.training-depth": "N(0, 0.01) 对小网络没问题，却让深层 sigmoid 网络得不到梯度；Xavier 保持激活和梯度的方差，"
    "过大的初始化使数值爆炸为 inf。",
    "chapter.training-lr": "不好的初始化只留下很窄的学习率窗口：“如果学习率稍微大一点点……整个梯度就炸掉了”，"
    "“假设学习率太小……训练没有进展”。",
    "chapter.training-remedies": "补救方法：ReLU、残差连接（加法代替乘法）、归一化、梯度裁剪、合理的初始化、分层自适应"
    "学习率（LARS，本章的练习）。",
    "chapter.training-map": "超出本章：Schoenholz 等（2017）预测，随机网络只有在深度低于约 6 xi_c（输入之间的相关性"
    "能保持的深度）时才能训练。",
    "note.mlp": "{act}，尺度 {init}：课程说“{claim}”，但 σ_w = 尺度 × √{width} = {sigma_w:.3g}，每层 χ₁ = "
    "{chi:.3g}，梯度的平方每层{trend}为 {chi:.3g} 倍：{depth} 层后理论 {theory}，实测 {measured}（{regime}）。",
    "note.mlp.silent": "{act}，尺度 {init}：理论预测 σ_w = 尺度 × √{width} = {sigma_w:.3g}，每层 χ₁ = {chi:.3g}，"
    "梯度的平方每层{trend}为 {chi:.3g} 倍：{depth} 层后理论 {theory}，实测 {measured}（{regime}）。",
    "measured.mlp-gradients": "最后一层之后的 ‖Y_L‖_F / √K（各次重复的 log10 平均），括号中是课程报告的最小非零 "
    "|元素|；理论：从输入方差出发的平均场 ∏ χ_l^½（到达不动点后为 χ₁^(L/2)）",
    "measured.symmetry": "最后一步 SGD 之后，W1 各行、b1 和 W2 上的 max |单元 1 - 单元 2|",
    "note.taylor": "{name}：本章说 {claim}，实测 f(0) = {f0}，f'(0) = {df0}。",
    "note.stuck": "{power} 在 {fmt} 中永远到不了 0：一旦成为次正规数，就近舍入使 {base} * x = x，乘积停在 {computed}，"
    "是精确值的 {factor:.0f} 倍：如本章所警告的那样是错的，只是没有冲刷为 0。",
    "note.lyapunov": "{factors} 个高斯矩阵之积的奇异值按 Lyapunov 谱的速率分开：每个因子 λ_1 − λ_{k} = {spread:.3f}，"
    "无论尺度如何条件数都达到约 1e{log10:.0f}；而正交矩阵之积的条件数保持为 1：只有等距（正交）初始化能让梯度的"
    "每个方向保持一致。",
}

#: One message table per language, with the same keys.
MESSAGES: dict[str, dict[str, str]] = {"en": _EN, "zh": _ZH}

#: Short phrases results carry as data (the chapter's claims, regime and agreement words), by language;
#: the English phrase is the id.
PHRASES: dict[str, dict[str, str]] = {
    "zh": {
        "yes": "是", "no": "否", "theory: yes": "理论：是", "theory: no": "理论：否",
        "vanishing": "消失", "stable": "稳定", "exploding": "爆炸", "overflow": "溢出", "underflow": "下溢",
        "ok": "正常", "tied": "相同", "broken": "已打破", "agrees": "一致", "disagrees": "不一致",
        "nothing trained": "没有训练成功", "trainable": "可训练", "untrainable": "不可训练", "diverged": "发散",
        "≈ identity near 0: yes": "零点附近 ≈ 恒等：是", "≈ identity near 0: no": "零点附近 ≈ 恒等：否",
        "reasonable": "合理", "explodes": "爆炸", "~1e20 (explodes)": "~1e20（爆炸）", "vanishes": "消失",
        "not too large": "不太大",
        "passes: x - x^3/3": "通过：x - x^3/3", "passes (x >= 0)": "通过（x >= 0）",
        "fails: f(0) = 1/2, f'(0) = 1/4": "不行：f(0) = 1/2，f'(0) = 1/4", "passes: x - x^3/12": "通过：x - x^3/12",
        "identical forever (exactly 0)": "永远相同（恰好为 0）", "dropout breaks the tie": "丢弃法打破对称",
        "units differ": "单元不同", "1 when n_in = n_out": "n_in = n_out 时为 1", "compromise": "折中",
        "overflows (> 65504)": "溢出（> 65504）", "flushes (< 2^-24)": "冲刷为 0（< 2^-24）",
        "entries ~1e22 (one run)": "元素约 1e22（一次运行）", "0.25 at x = 0": "x = 0 处为 0.25",
        "~3.35e-4 (vanishes)": "约 3.35e-4（消失）",
        "a further symmetry to break": "又一种需要打破的对称性", "random init breaks it": "随机初始化打破它",
        "may the weights start equal?": "权重能否初始化为相同的值？", "gradients well conditioned?": "梯度条件良好？",
        "fix divergence after the fact?": "能否事后解决发散？", "grows": "增长", "shrinks": "缩小",
    },
}  # fmt: skip


def check_lang(lang: Any) -> str:
    """Return ``lang`` if it is one of :data:`LANGUAGES`.

    Raises:
        UnknownNameError: another value; the message lists the languages.
    """
    if lang not in LANGUAGES:
        raise UnknownNameError("lang", lang, list(LANGUAGES))
    return lang


def tr(key: str, lang: str = "en", **fields: Any) -> str:
    """The message ``key`` in ``lang``, its ``{fields}`` filled (``str.format``)."""
    return MESSAGES[check_lang(lang)][key].format(**fields)


def phrase(text: Any, lang: str = "en") -> Any:
    """``text`` in ``lang`` where :data:`PHRASES` has it; anything else (numbers, other text) unchanged."""
    if not isinstance(text, str):
        return text
    return PHRASES.get(check_lang(lang), {}).get(text, text)


def html_lang(lang: str) -> str:
    """The HTML ``lang`` attribute of a language ("zh-CN" picks Simplified Chinese fonts)."""
    return {"en": "en", "zh": "zh-CN"}[check_lang(lang)]
