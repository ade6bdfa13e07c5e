"""Fictional names for the demo district: communities, people, shops (no real persons)."""

from __future__ import annotations

import random

# id, Chinese name, English name, street
COMMUNITIES = (
    ("yecuo", "叶厝社区", "Yecuo", "叶厝路"),
    ("hubin", "湖滨社区", "Hubin", "湖滨北路"),
    ("lianhua", "莲花社区", "Lianhua", "莲花路"),
    ("wutong", "梧桐社区", "Wutong", "梧桐街"),
    ("fenghuang", "凤凰社区", "Fenghuang", "凤凰山路"),
    ("haiyan", "海燕社区", "Haiyan", "海燕路"),
    ("jinbang", "金榜社区", "Jinbang", "金榜路"),
    ("songbai", "松柏社区", "Songbai", "松柏大道"),
    ("qiaonan", "桥南社区", "Qiaonan", "桥南街"),
)
SURNAMES = "陈林黄张李王吴刘蔡杨许郑谢洪郭邱曾廖赖周徐苏叶庄吕江何罗高"
GIVEN = "志明建华丽娟秀英国平伟强海燕春梅文杰玉兰金水淑芬俊杰美玲宏伟晓东雅婷嘉怡家豪"
SHOPS = (
    "包饼店",
    "早餐店",
    "沙茶面馆",
    "便利店",
    "五金店",
    "理发店",
    "水果店",
    "药店",
    "奶茶店",
    "电动车行",
    "小吃店",
    "海鲜排档",
    "米粉店",
    "杂货店",
)


def person(rnd: random.Random) -> str:
    """A plausible Chinese name: surname plus one or two given-name characters."""
    return rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2, 2))))


def shop(rnd: random.Random) -> str:
    return f"{rnd.choice(SURNAMES)}记{rnd.choice(SHOPS)}"
