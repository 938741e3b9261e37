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
