"""Domain vocabulary composed into extra training-only examples (imported by augment.py).

Written for protofuse (Apache-2.0). Frames × words per intent: these teach the model the domain's vocabulary
(carriers, payment methods, symptoms, products...). They carry `"split": "train"`, so the held-out test and
validation splits stay purely hand-written seeds and their variants.
"""

ZH = {
    "refund": (["我要退{w}", "{w}怎么退", "{w}能退吗", "{w}退款", "{w}想退货", "{w}要换货", "退{w}的钱", "{w}坏了要退", "{w}不合适换一个", "{w}退回去了钱呢"],
               ["衣服", "鞋子", "裤子", "手机", "耳机", "包", "这个", "订单", "外套", "裙子", "充电器", "杯子", "化妆品", "玩具", "电脑", "这单"]),
    "logistics": (["{w}到哪了", "{w}怎么还没到", "{w}显示签收了", "{w}一直不动", "用{w}发", "能发{w}吗", "{w}单号多少", "{w}几天到", "催一下{w}", "{w}送错了"],
                  ["快递", "包裹", "顺丰", "中通", "圆通", "韵达", "申通", "京东快递", "邮政", "ems", "德邦", "货", "物流", "我买的东西", "件"]),
    "payment": (["{w}付不了", "能用{w}吗", "{w}支付失败", "{w}扣了两次钱", "支持{w}吗", "{w}付款没成功", "用{w}付款", "{w}扣款了订单没有", "{w}怎么开发票", "{w}可以分期吗"],
                ["花呗", "白条", "支付宝", "微信", "信用卡", "银行卡", "储蓄卡", "云闪付", "visa", "余额", "积分", "优惠券", "apple pay", "paypal", "对公账户"]),
    "account": (["{w}登录不了", "{w}忘了", "怎么改{w}", "{w}被盗了", "{w}收不到", "{w}绑定不了", "{w}怎么找回", "修改{w}", "{w}异常", "{w}被冻结了"],
                ["账号", "密码", "手机号", "邮箱", "验证码", "会员账号", "支付密码", "用户名", "昵称", "微信登录", "实名信息", "登录密码", "账户"]),
    "technical": (["{w}闪退", "{w}打不开", "{w}一直卡", "{w}报错", "{w}白屏", "{w}加载不出来", "{w}崩溃了", "{w}用不了", "{w}没反应", "{w}连不上"],
                  ["app", "软件", "小程序", "网页", "网站", "客户端", "安卓版", "苹果版", "页面", "设备", "机器", "蓝牙", "系统", "程序", "电脑版"]),
    "complaint": (["{w}太差了", "投诉{w}", "{w}态度恶劣", "对{w}很不满意", "{w}就是骗子", "{w}太坑了", "{w}垃圾", "我要曝光{w}", "{w}太让人失望了", "{w}必须给个说法"],
                  ["你们", "客服", "快递员", "商家", "店铺", "售后", "这个平台", "你们公司", "服务", "质量", "送货的", "这家店"]),
    "product": (["{w}有货吗", "{w}多少钱", "{w}有优惠吗", "{w}什么材质", "{w}保修多久", "{w}有几种颜色", "{w}怎么用", "{w}是正品吗", "{w}哪款好", "{w}尺码怎么选"],
                ["这款", "这个", "衣服", "鞋", "手机", "耳机", "面霜", "口红", "电脑", "手表", "包", "新款", "套装", "裙子", "充电宝"]),
    "human": (["转{w}", "我要{w}", "找{w}", "{w}在吗", "请帮我转{w}", "联系{w}", "叫{w}来", "给我接{w}", "{w}快来", "要{w}处理"],
              ["人工", "人工客服", "真人", "真人客服", "客服人员", "工作人员", "在线客服", "人工服务", "你们主管", "负责人"]),
    "greeting": (["{w}", "{w}在吗", "{w}呀", "{w} 有人吗", "{w}客服"],
                 ["你好", "您好", "哈喽", "嗨", "早上好", "晚上好", "下午好", "亲", "hello", "hi"]),
    "other": (["{w}", "{w}啦", "好的{w}", "{w}哈"],
              ["谢谢", "好的", "知道了", "没事了", "再见", "哈哈", "不用了", "收到", "嗯", "ok", "拜拜", "行", "辛苦了"]),
}

EN = {
    "refund": (["refund my {w}", "return the {w}", "i want to return my {w}", "the {w} is broken refund", "exchange the {w}", "can i return this {w}", "{w} refund please", "money back for the {w}", "the {w} doesnt fit return", "cancel the {w} and refund"],
               ["order", "shoes", "jacket", "phone", "headphones", "bag", "dress", "charger", "item", "laptop", "shirt", "watch", "toy", "case", "purchase"]),
    "logistics": (["where is my {w}", "{w} not arrived", "{w} tracking", "track my {w}", "{w} delayed", "{w} says delivered but nothing", "when will the {w} arrive", "ship with {w}", "{w} stuck", "{w} lost"],
                  ["parcel", "package", "order", "shipment", "delivery", "dhl", "ups", "fedex", "usps", "courier", "box", "stuff", "royal mail", "ems", "item"]),
    "payment": (["{w} declined", "can i pay with {w}", "{w} not working at checkout", "charged twice on my {w}", "do you accept {w}", "{w} payment failed", "{w} charged but no order", "pay by {w}", "{w} invoice", "{w} billing issue"],
                ["card", "visa", "mastercard", "amex", "paypal", "apple pay", "google pay", "credit card", "debit card", "klarna", "gift card", "bank transfer", "alipay", "wechat pay", "coupon"]),
    "account": (["cant log into my {w}", "forgot my {w}", "change my {w}", "{w} hacked", "{w} not received", "reset {w}", "update my {w}", "{w} locked", "recover my {w}", "verify my {w}"],
                ["account", "password", "email", "phone number", "username", "verification code", "login", "profile", "2fa code", "otp", "membership", "pin", "sign in"]),
    "technical": (["{w} crashes", "{w} wont load", "{w} is frozen", "{w} shows an error", "{w} keeps lagging", "{w} not working", "{w} is broken", "{w} blank screen", "{w} stuck loading", "{w} bug"],
                  ["app", "website", "site", "page", "checkout page", "android app", "iphone app", "the app", "device", "bluetooth", "screen", "login page", "software", "link", "update"]),
    "complaint": (["{w} is terrible", "complaint about {w}", "{w} was so rude", "very unhappy with {w}", "{w} is a scam", "worst {w} ever", "{w} is unacceptable", "im furious about {w}", "disappointed with {w}", "{w} sucks"],
                  ["your service", "your support", "the courier", "your company", "this store", "the quality", "your staff", "the agent", "your team", "this experience", "you guys", "the seller"]),
    "product": (["is the {w} in stock", "how much is the {w}", "what size {w}", "is the {w} waterproof", "{w} warranty?", "what colors does the {w} come in", "how do i use the {w}", "is the {w} original", "which {w} should i buy", "{w} material?"],
                ["jacket", "phone", "watch", "dress", "headphones", "laptop", "cream", "shoes", "bag", "charger", "new model", "bundle", "blender", "tent", "lipstick"]),
    "human": (["talk to {w}", "i want {w}", "connect me to {w}", "get me {w}", "need {w}", "speak with {w}", "transfer me to {w}", "can i have {w}", "{w} please", "{w} now"],
              ["a human", "an agent", "a real person", "a live agent", "customer service", "a representative", "a person", "support staff", "your supervisor", "a human agent"]),
    "greeting": (["{w}", "{w}!", "{w} there", "{w} team", "{w} anyone"],
                 ["hi", "hello", "hey", "good morning", "good evening", "good afternoon", "morning", "hiya", "howdy", "yo"]),
    "other": (["{w}", "{w}!", "ok {w}", "{w} bye"],
              ["thanks", "thank you", "ok", "cool", "never mind", "got it", "bye", "lol", "great", "nice", "sure", "no thanks", "all good"]),
}


def examples(rng):
    """(text, intent, lang, group) rows; every frame × word, shuffled deterministically by `rng`."""
    rows = []
    for lang, table in (("zh", ZH), ("en", EN)):
        for intent, (frames, words) in table.items():
            for frame in frames:
                for word in words:
                    rows.append((frame.format(w=word), intent, lang, f"{lang}-{intent}-lexicon"))
    rng.shuffle(rows)
    return rows

# Domain words on their own (customers often send one word): each word alone and in a few noisy variants
# (augment.py adds fillers, typos, pinyin...), pinned to the training split like the frames above.
WORDS = {
    "zh": {
        "refund": ["退货", "退款", "换货", "售后", "退钱", "取消订单", "撤单", "仅退款", "退差价", "运费险", "七天无理由", "退回去",
                   "申请退货", "退换", "退货退款", "不想要了退", "返款", "退押金"],
        "logistics": ["快递", "物流", "顺丰", "中通", "圆通", "韵达", "申通", "极兔", "京东物流", "邮政", "ems", "德邦", "菜鸟",
                      "驿站", "丰巢", "快递柜", "单号", "运单号", "运费", "邮费", "包邮", "发货", "配送", "派送", "签收", "揽收",
                      "中转", "自提", "收货地址", "运费怎么收", "邮费多少", "几天到", "到哪了", "催件", "物流信息"],
        "payment": ["付款", "支付", "扣款", "扣费", "账单", "发票", "提现", "余额", "分期", "花呗", "白条", "信用卡", "储蓄卡",
                    "银联", "云闪付", "微信支付", "支付宝", "数字人民币", "万事达", "美国运通", "转账", "汇款", "对公转账", "满减",
                    "红包抵扣", "积分抵扣", "定金", "尾款", "代付", "货到付款", "会员费", "年费", "自动续费", "免密支付", "付款失败", "重复扣款", "多扣钱", "开票", "专票"],
        "account": ["账号", "帐号", "密码", "验证码", "手机号", "邮箱", "实名认证", "注销", "冻结", "封号", "解封", "绑定",
                    "解绑", "登录", "注册", "会员", "昵称", "头像", "隐私", "账号安全", "异地登录", "改密码", "找回密码", "换绑"],
        "technical": ["卡", "好卡", "卡顿", "闪退", "白屏", "黑屏", "乱码", "排版乱了", "报错", "bug", "崩了", "死机", "转圈",
                      "加载不出来", "掉线", "断网", "网络错误", "404", "500错误", "系统错误", "无法连接", "更新失败", "版本太旧",
                      "不兼容", "不能用", "用不了", "没反应", "打不开", "黑屏了", "卡死", "页面错位", "显示异常", "连不上网"],
        "complaint": ["上当", "受骗", "假货", "愤怒", "当我傻", "耍我", "糊弄", "不能接受", "虚假宣传", "一拖再拖", "不解决",
                      "骗子", "坑人", "垃圾", "恶心", "无耻", "过分", "离谱", "气死了", "敷衍", "踢皮球", "忽悠", "黑店", "奸商",
                      "差评", "投诉", "曝光", "消协", "12315", "工商局", "太差劲", "火大", "忍无可忍", "骗钱", "没良心", "坑爹"],
        "product": ["码数", "尺码", "尺寸", "颜色", "材质", "规格", "型号", "库存", "现货", "预售", "补货", "价格", "优惠",
                    "折扣", "保修", "质保", "正品", "产地", "配置", "内存", "续航", "功能", "赠品", "说明书", "假一赔十",
                    "包装", "款式", "新款", "还能买吗", "有现货吗", "多少钱", "参数", "成分", "保质期", "重量", "容量"],
        "human": ["人工", "转人工", "真人", "客服小姐姐", "客服妹子", "在线客服", "人工客服", "客服电话", "热线", "回电话",
                  "打电话给我", "对接人", "专人处理", "经理", "主管", "负责人", "工作人员", "活人", "人工坐席", "客服专员",
                  "电话联系", "留个电话", "找人工", "接线员"],
        "greeting": ["你好", "您好", "哈喽", "哈罗", "嗨", "嗨喽", "早", "早上好", "中午好", "晚上好", "在吗", "在么", "在不",
                     "有人吗", "亲", "客服你好", "hello", "hi", "哈啰", "喂", "嘿", "你好啊", "您好呀", "哈喽亲"],
        "other": ["好", "好的", "好嘞", "好滴", "可以", "行", "嗯", "嗯嗯", "哦", "噢", "了解", "明白", "收到", "多谢", "谢谢",
                  "感谢", "嘿嘿", "哈哈", "呵呵", "不需要了", "不用了", "算了", "没事", "再见", "拜拜", "晚安", "👍", "ok",
                  "好吧", "懂了", "行吧", "ok的", "没问题", "谢了", "知道啦", "嗯好"],
    },
    "en": {
        "refund": ["refund", "return", "exchange", "money back", "send it back", "return label", "rma", "store credit",
                   "partial refund", "reimburse", "reimbursement", "refund status", "return request", "replacement",
                   "dont want it anymore", "no longer want it", "changed my mind"],
        "logistics": ["fedex", "dhl", "ups", "usps", "dpd", "hermes", "evri", "gls", "royal mail", "canada post",
                      "australia post", "aramex", "tnt", "yodel", "parcelforce", "purolator", "ontrac", "amazon logistics",
                      "courier", "tracking", "tracking number", "shipping", "delivery", "dispatch", "customs", "postage",
                      "shipping fee", "shipping cost", "freight", "depot", "pickup point", "parcel locker", "return to sender",
                      "wrong address", "eta", "shipment", "in transit"],
        "payment": ["amex", "american express", "discover", "jcb", "diners club", "maestro", "unionpay", "venmo", "zelle",
                    "cash app", "afterpay", "affirm", "sezzle", "klarna", "paypal", "apple pay", "google pay", "samsung pay",
                    "shop pay", "bitcoin", "crypto", "wire transfer", "iban", "invoice", "receipt", "billing", "cvv",
                    "card number", "installments", "tax", "vat", "double charge", "card error", "declined", "pre authorization",
                    "pending charge", "balance", "promo code", "discount code", "checkout total", "cash on delivery", "cod", "pay on delivery", "membership fee", "subscription fee", "annual fee"],
        "account": ["account", "login", "log in", "sign in", "password", "reset password", "username", "email change",
                    "2fa", "otp", "verification code", "sms code", "locked out", "hacked", "account locked",
                    "account suspended", "delete account", "deactivate", "profile", "membership", "loyalty points",
                    "security question", "authenticator", "linked account"],
        "technical": ["lag", "laggy", "lagging", "freeze", "frozen", "crash", "crashing", "bug", "glitch", "glitchy",
                      "error", "404", "500 error", "502", "timeout", "spinning wheel", "loading forever", "buffering",
                      "blank screen", "black screen", "white screen", "not responding", "unresponsive", "so slow", "offline",
                      "no connection", "wifi issue", "bluetooth", "pairing", "firmware", "driver", "reinstall", "ios app",
                      "android app", "chrome", "safari", "cache", "cookies", "compatibility", "not compatible", "sync issue",
                      "battery drain", "overheating", "reboot", "boot loop", "app update", "broken link"],
        "complaint": ["ripoff", "rip off", "scam", "fraud", "disgusting", "shameful", "shame on you", "pathetic", "useless",
                      "incompetent", "liars", "thieves", "joke", "outrageous", "appalling", "horrible", "awful", "terrible",
                      "unacceptable", "disgrace", "fed up", "sick of this", "ignored", "stop ignoring me", "hung up on me",
                      "broken promise", "false advertising", "misleading", "fake", "counterfeit", "bbb", "lawyer",
                      "1 star", "trading standards", "furious", "livid", "infuriating", "ridiculous", "bs", "worst"],
        "product": ["size", "sizing", "size chart", "color", "colour", "material", "specs", "dimensions", "weight",
                    "in stock", "restock", "back in stock", "pre order", "price", "discount", "warranty", "authentic",
                    "made in", "features", "battery life", "storage", "capacity", "ingredients", "engraving",
                    "gift wrap", "bundle", "new model", "difference between models", "which model", "black version",
                    "compare", "availability", "sold out"],
        "human": ["human", "agent", "operator", "representative", "rep", "supervisor", "manager", "live agent",
                  "real person", "customer service", "customer support", "support team", "hotline", "phone number",
                  "call me", "callback", "phone support", "live person", "someone real", "a person please",
                  "human please", "agent please"],
        "greeting": ["hi", "hello", "hey", "hiya", "heya", "hallo", "hola", "bonjour", "yo", "sup", "good morning",
                     "morning", "gm", "greetings", "howdy", "hey there", "hello there", "hi team", "evening", "afternoon",
                     "helloo", "hi again", "hey hey"],
        "other": ["?", "??", "...", "ok", "okay", "k", "kk", "cool", "thanks", "ty", "thx", "lol", "lmao", "haha",
                  "bye", "cya", "test", "asdf", "123", "weather", "tell me a joke", "whats your name", "where are you located",
                  "who are you", "nice", "awesome", "great", "perfect", "alright", "i love your brand", "love it",
                  "youre great", "good bot", "nevermind", "nothing else", "sounds good", "np", "yep", "nope"],
    },
}
