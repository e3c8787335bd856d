"""H&M category vocabularies for the synthetic data generator (`recsys.datasets.generator`).

Names and codes follow the real catalogue's (product types, colour groups, sections,
departments, garment groups), but here every name has exactly one number, so the
generated data never contradicts itself. Only vocabulary lives here, no rows.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_YEAR, SUMMER, WINTER = 0, 1, 2  # rows of the calendar's seasonal demand table


@dataclass(frozen=True)
class ProductType:
    no: int
    name: str
    group: str  # product_group_name
    garment_group: int  # default garment_group_no (a department may override it)
    season: int  # SUMMER, WINTER or ALL_YEAR: when demand peaks
    price: int  # typical list price in price units (price = units / 59000)
    weight: float  # relative number of articles of this type in a department


def _types(*rows: tuple) -> dict[str, ProductType]:
    return {row[1]: ProductType(*row) for row in rows}


GUB, GLB, GFB = "Garment Upper body", "Garment Lower body", "Garment Full body"
PRODUCT_TYPES = _types(
    (245, "Cardigan", GUB, 1003, WINTER, 2499, 108),
    (252, "Sweater", GUB, 1003, WINTER, 2499, 676),
    (253, "Vest top", GUB, 1002, SUMMER, 999, 148),
    (254, "Top", GUB, 1005, ALL_YEAR, 1499, 215),
    (255, "T-shirt", GUB, 1002, ALL_YEAR, 999, 397),
    (256, "Bodysuit", GUB, 1005, ALL_YEAR, 1499, 32),
    (257, "Polo shirt", GUB, 1002, SUMMER, 1499, 30),
    (258, "Blouse", GUB, 1010, ALL_YEAR, 2499, 224),
    (259, "Shirt", GUB, 1011, ALL_YEAR, 2499, 137),
    (262, "Jacket", GUB, 1007, WINTER, 4999, 130),
    (263, "Coat", GUB, 1007, WINTER, 6999, 60),
    (264, "Blazer", GUB, 1008, ALL_YEAR, 4999, 55),
    (308, "Hoodie", GUB, 1002, WINTER, 2499, 118),
    (272, "Trousers", GLB, 1009, ALL_YEAR, 2999, 698),
    (273, "Leggings/Tights", GLB, 1005, ALL_YEAR, 1499, 131),
    (274, "Shorts", GLB, 1025, SUMMER, 1999, 75),
    (275, "Skirt", GLB, 1012, SUMMER, 2499, 145),
    (265, "Dress", GFB, 1013, SUMMER, 2999, 390),
    (267, "Jumpsuit/Playsuit", GFB, 1013, SUMMER, 2999, 30),
    (268, "Dungarees", GFB, 1016, ALL_YEAR, 2999, 20),
    (270, "Garment Set", GFB, 1005, ALL_YEAR, 2499, 25),
    (283, "Underwear body", "Underwear", 1017, ALL_YEAR, 1499, 16),
    (286, "Underwear bottom", "Underwear", 1017, ALL_YEAR, 599, 168),
    (306, "Bra", "Underwear", 1017, ALL_YEAR, 1999, 210),
    (307, "Kids Underwear top", "Underwear", 1017, ALL_YEAR, 799, 20),
    (305, "Robe", "Underwear", 1017, WINTER, 2999, 10),
    (293, "Night gown", "Nightwear", 1017, ALL_YEAR, 1999, 15),
    (296, "Pyjama bottom", "Nightwear", 1017, ALL_YEAR, 1499, 19),
    (297, "Pyjama set", "Nightwear", 1017, WINTER, 2499, 31),
    (302, "Socks", "Socks & Tights", 1021, ALL_YEAR, 499, 80),
    (304, "Underwear Tights", "Socks & Tights", 1021, WINTER, 799, 43),
    (57, "Swimsuit", "Swimwear", 1018, SUMMER, 2499, 27),
    (59, "Swimwear bottom", "Swimwear", 1018, SUMMER, 1299, 63),
    (298, "Bikini top", "Swimwear", 1018, SUMMER, 1499, 60),
    (86, "Ballerinas", "Shoes", 1020, SUMMER, 2499, 15),
    (87, "Boots", "Shoes", 1020, WINTER, 4999, 53),
    (88, "Flip flop", "Shoes", 1020, SUMMER, 999, 10),
    (90, "Pumps", "Shoes", 1020, ALL_YEAR, 3999, 19),
    (91, "Sandals", "Shoes", 1020, SUMMER, 2999, 25),
    (93, "Slippers", "Shoes", 1020, WINTER, 1499, 10),
    (94, "Sneakers", "Shoes", 1020, ALL_YEAR, 3499, 38),
    (144, "Flat shoe", "Shoes", 1020, ALL_YEAR, 2999, 12),
    (66, "Bag", "Accessories", 1019, ALL_YEAR, 2999, 61),
    (67, "Belt", "Accessories", 1019, ALL_YEAR, 1499, 31),
    (69, "Cap/peaked", "Accessories", 1019, SUMMER, 1299, 15),
    (70, "Earring", "Accessories", 1019, ALL_YEAR, 799, 39),
    (71, "Gloves", "Accessories", 1019, WINTER, 999, 10),
    (73, "Hair string", "Accessories", 1019, ALL_YEAR, 499, 16),
    (74, "Hair/alice band", "Accessories", 1019, ALL_YEAR, 699, 17),
    (75, "Hat/beanie", "Accessories", 1019, WINTER, 1299, 26),
    (76, "Hat/brim", "Accessories", 1019, SUMMER, 1999, 10),
    (77, "Necklace", "Accessories", 1019, ALL_YEAR, 999, 32),
    (80, "Scarf", "Accessories", 1019, WINTER, 1999, 50),
    (81, "Sunglasses", "Accessories", 1019, SUMMER, 1299, 13),
    (82, "Tie", "Accessories", 1019, ALL_YEAR, 1499, 10),
)

GARMENT_GROUPS = {
    1002: "Jersey Basic",
    1003: "Knitwear",
    1005: "Jersey Fancy",
    1006: "Woven/Jersey/Knitted mix Baby",
    1007: "Outdoor",
    1008: "Dressed",
    1009: "Trousers",
    1010: "Blouses",
    1011: "Shirts",
    1012: "Skirts",
    1013: "Dresses Ladies",
    1014: "Dresses/Skirts girls",
    1016: "Trousers Denim",
    1017: "Under-, Nightwear",
    1018: "Swimwear",
    1019: "Accessories",
    1020: "Shoes",
    1021: "Socks and Tights",
    1025: "Shorts",
}


@dataclass(frozen=True)
class Index:
    code: str
    name: str
    group_no: int
    group_name: str
    share: float  # share of the catalogue (real full-size proportions)
    price_factor: float  # children's clothes are cheaper


INDEXES = {
    i.code: i
    for i in (
        Index("A", "Ladieswear", 1, "Ladieswear", 26001, 1.0),
        Index("B", "Lingeries/Tights", 1, "Ladieswear", 6775, 1.0),
        Index("C", "Ladies Accessories", 1, "Ladieswear", 6961, 1.0),
        Index("D", "Divided", 2, "Divided", 15149, 0.8),
        Index("F", "Menswear", 3, "Menswear", 12553, 1.0),
        Index("G", "Baby Sizes 50-98", 4, "Baby/Children", 8875, 0.6),
        Index("H", "Children Sizes 92-140", 4, "Baby/Children", 12007, 0.6),
        Index("I", "Children Sizes 134-170", 4, "Baby/Children", 9214, 0.7),
        Index("J", "Children Accessories, Swimwear", 4, "Baby/Children", 4615, 0.6),
        Index("S", "Sport", 26, "Sport", 3392, 1.0),
    )
}


@dataclass(frozen=True)
class Department:
    no: int
    name: str
    index_code: str
    section_no: int
    section_name: str
    garment_group: int | None  # overrides the product type's default when set
    product_types: tuple[str, ...]


def _section(index: str, no: int, name: str, *depts: tuple) -> list[Department]:
    return [Department(d[0], d[1], index, no, name, d[2], tuple(d[3])) for d in depts]


DEPARTMENTS: list[Department] = [
    # A Ladieswear
    *_section(
        "A",
        15,
        "Womens Everyday Collection",
        (1636, "Jersey fancy", 1005, ["Top", "T-shirt", "Dress", "Bodysuit", "Vest top"]),
        (1222, "Suit jacket", 1008, ["Blazer", "Jacket"]),
        (3090, "Campaigns", None, ["Dress", "Blouse", "Trousers", "Skirt", "Sweater"]),
    ),
    *_section(
        "A",
        11,
        "Womens Tailoring",
        (1212, "Suit", 1008, ["Blazer", "Trousers", "Skirt"]),
        (1313, "Tailoring Dresses", None, ["Dress", "Jumpsuit/Playsuit"]),
        (1515, "Tailoring Blouses", None, ["Blouse", "Shirt"]),
    ),
    *_section(
        "A",
        16,
        "Womens Everyday Basics",
        (1676, "Jersey Basic", 1002, ["T-shirt", "Vest top", "Top", "Leggings/Tights"]),
        (1646, "Knitwear Basic", 1003, ["Sweater", "Cardigan"]),
    ),
    *_section(
        "A",
        6,
        "Womens Casual",
        (1410, "Shorts & Skirts", None, ["Shorts", "Skirt"]),
        (1670, "Jersey License", 1005, ["T-shirt", "Hoodie", "Sweater"]),
    ),
    *_section(
        "A",
        57,
        "Ladies Denim",
        (1772, "Denim Trousers", 1016, ["Trousers", "Shorts", "Skirt"]),
        (1773, "Denim Other Garments", 1016, ["Jacket", "Dress", "Shirt", "Dungarees"]),
    ),
    *_section(
        "A",
        18,
        "Womens Trend",
        (1241, "Outwear & Blazers", None, ["Jacket", "Coat", "Blazer"]),
        (1941, "Blouse & Dress", None, ["Blouse", "Dress"]),
        (1948, "Trousers & Skirt", None, ["Trousers", "Skirt"]),
    ),
    *_section("A", 19, "Womens Jackets", (1201, "Womens Outdoor", 1007, ["Jacket", "Coat"])),
    *_section(
        "A",
        14,
        "Womens Premium",
        (1612, "Jersey/Knitwear Premium", None, ["Sweater", "Cardigan", "Top"]),
        (1912, "Woven Premium", None, ["Blouse", "Shirt", "Trousers", "Dress"]),
    ),
    *_section("A", 2, "H&M+", (1909, "Woven top", None, ["Blouse", "Shirt", "Dress"])),
    *_section(
        "A",
        8,
        "Mama",
        (2033, "Woven Tops", None, ["Blouse", "Dress"]),
        (2035, "Nursing", 1005, ["Top", "Dress"]),
    ),
    # B Lingeries/Tights
    *_section(
        "B",
        61,
        "Womens Lingerie",
        (1339, "Clean Lingerie", None, ["Bra", "Underwear bottom", "Underwear body"]),
        (1338, "Expressive Lingerie", None, ["Bra", "Underwear bottom", "Night gown"]),
        (1334, "Casual Lingerie", None, ["Bra", "Underwear bottom"]),
    ),
    *_section(
        "B",
        62,
        "Womens Nightwear, Socks & Tigh",
        (3608, "Tights basic", 1021, ["Underwear Tights", "Leggings/Tights"]),
        (3610, "Socks", None, ["Socks"]),
        (3709, "Nightwear", None, ["Pyjama set", "Pyjama bottom", "Night gown", "Robe"]),
    ),
    *_section(
        "B",
        60,
        "Womens Swimwear, beachwear",
        (3602, "Swimwear", None, ["Swimsuit", "Swimwear bottom", "Bikini top"]),
    ),
    # C Ladies Accessories
    *_section(
        "C",
        64,
        "Womens Shoes",
        (3527, "Flats", None, ["Ballerinas", "Flat shoe", "Sandals", "Flip flop", "Slippers"]),
        (3528, "Heels", None, ["Pumps"]),
        (3529, "Boots", None, ["Boots"]),
        (3828, "Sneakers", None, ["Sneakers"]),
    ),
    *_section(
        "C",
        65,
        "Womens Big accessories",
        (1920, "Small Bags", None, ["Bag"]),
        (3409, "Scarves", None, ["Scarf"]),
        (3519, "Gloves/Hats", None, ["Gloves", "Hat/beanie", "Hat/brim", "Cap/peaked"]),
        (3421, "Belts", None, ["Belt"]),
    ),
    *_section(
        "C",
        66,
        "Womens Small accessories",
        (4343, "Hair Accessories", None, ["Hair string", "Hair/alice band"]),
        (4344, "Jewellery", None, ["Earring", "Necklace"]),
        (8888, "Sunglasses", None, ["Sunglasses"]),
    ),
    # D Divided
    *_section(
        "D",
        53,
        "Divided Collection",
        (1344, "Dresses", None, ["Dress", "Jumpsuit/Playsuit"]),
        (1444, "Skirts", None, ["Skirt"]),
        (1543, "Tops Woven", None, ["Blouse", "Shirt"]),
        (1640, "Tops Fancy Jersey", 1005, ["Top", "T-shirt", "Vest top", "Bodysuit"]),
        (1647, "Tops Knitwear", 1003, ["Sweater", "Cardigan"]),
        (1747, "Trousers", None, ["Trousers", "Shorts"]),
        (1244, "Outdoor/Blazers", None, ["Jacket", "Coat", "Blazer"]),
    ),
    *_section(
        "D",
        51,
        "Divided Basics",
        (1643, "Basic 1", 1002, ["T-shirt", "Vest top", "Top", "Leggings/Tights", "Hoodie"]),
        (1645, "Divided Swimwear", None, ["Bikini top", "Swimwear bottom", "Swimsuit"]),
        (3937, "UW", None, ["Underwear bottom", "Bra", "Socks"]),
    ),
    *_section(
        "D",
        52,
        "Divided Accessories",
        (3929, "Divided Shoes", None, ["Sneakers", "Boots", "Sandals"]),
        (
            3948,
            "Other Accessories",
            None,
            ["Earring", "Necklace", "Hair string", "Bag", "Cap/peaked", "Sunglasses"],
        ),
    ),
    *_section(
        "D",
        50,
        "Divided Projects",
        (1343, "Projects Dresses", None, ["Dress"]),
        (1644, "Projects Jersey & Knitwear", 1005, ["Sweater", "Top", "Hoodie"]),
    ),
    *_section(
        "D",
        58,
        "Divided Selected",
        (1649, "Trousers DS", None, ["Trousers"]),
        (5961, "Dresses DS", None, ["Dress"]),
        (1547, "Tops woven DS", None, ["Blouse"]),
    ),
    *_section(
        "D",
        57,
        "Ladies Denim",
        (1779, "Everyday Waredrobe Denim", 1016, ["Trousers", "Shorts", "Skirt"]),
    ),
    # F Menswear
    *_section(
        "F",
        26,
        "Men Underwear",
        (5832, "Light Basic Jersey", 1002, ["T-shirt", "Vest top", "Polo shirt"]),
        (5833, "Heavy Basic Jersey", 1002, ["Hoodie", "Sweater", "Trousers"]),
        (7188, "Socks Bin", None, ["Socks"]),
        (7988, "Underwear Jersey", None, ["Underwear bottom", "Pyjama set"]),
    ),
    *_section(
        "F",
        21,
        "Contemporary Casual",
        (5956, "Men Woven", None, ["Shirt", "Trousers", "Shorts"]),
        (5958, "Men Knitwear", None, ["Sweater", "Cardigan"]),
    ),
    *_section(
        "F",
        23,
        "Men Suits & Tailoring",
        (5131, "Blazer", None, ["Blazer"]),
        (8616, "Trouser S&T", 1008, ["Trousers"]),
        (8617, "Shirt S&T", None, ["Shirt", "Tie"]),
    ),
    *_section(
        "F",
        55,
        "Contemporary Street",
        (5957, "Men Jersey", 1005, ["T-shirt", "Hoodie", "Sweater", "Shorts"]),
    ),
    *_section(
        "F",
        56,
        "Denim Men",
        (5672, "Denim trousers", 1016, ["Trousers"]),
        (5673, "Denim shorts", 1016, ["Shorts"]),
    ),
    *_section(
        "F",
        31,
        "Mens Outerwear",
        (5252, "Jacket Casual", None, ["Jacket"]),
        (5262, "Jacket Smart", None, ["Coat", "Jacket"]),
    ),
    *_section(
        "F",
        25,
        "Men Accessories",
        (
            7388,
            "Bags & Items",
            None,
            ["Bag", "Belt", "Cap/peaked", "Hat/beanie", "Scarf", "Gloves", "Sunglasses"],
        ),
    ),
    *_section(
        "F", 27, "Men Shoes", (3629, "Shoes", None, ["Sneakers", "Boots", "Sandals", "Slippers"])
    ),
    # S Sport
    *_section(
        "S",
        5,
        "Ladies H&M Sport",
        (8310, "Ladies Sport Bottoms", None, ["Leggings/Tights", "Shorts", "Trousers"]),
        (8316, "Ladies Sport Bras", None, ["Bra", "Top", "Vest top"]),
        (8397, "Ladies Sport Woven", None, ["Jacket", "Top"]),
    ),
    *_section(
        "S",
        22,
        "Men H&M Sport",
        (8558, "Men Sport Tops", 1005, ["T-shirt", "Shorts", "Trousers", "Hoodie"]),
    ),
    *_section(
        "S",
        49,
        "Kids Sports",
        (6280, "Tops Girls", 1005, ["T-shirt", "Top"]),
        (6281, "Bottoms Girls", 1005, ["Leggings/Tights", "Shorts"]),
    ),
    # G Baby Sizes 50-98
    *_section(
        "G",
        41,
        "Baby Boy",
        (6545, "Baby Boy Jersey Fancy", 1006, ["T-shirt", "Trousers", "Garment Set"]),
        (6512, "Baby Boy Outdoor", 1006, ["Jacket"]),
    ),
    *_section(
        "G",
        40,
        "Baby Girl",
        (6525, "Baby Girl Jersey Fancy", 1006, ["Dress", "Top", "Leggings/Tights"]),
        (6526, "Baby Girl Knitwear", 1006, ["Cardigan", "Sweater"]),
    ),
    *_section(
        "G",
        44,
        "Baby Essentials & Complements",
        (6515, "Baby basics", 1006, ["Bodysuit", "Trousers", "Garment Set"]),
        (6541, "Baby Socks", None, ["Socks"]),
        (6563, "Baby Nightwear", None, ["Pyjama set"]),
        (2950, "Baby Toys/Acc", None, ["Hat/beanie", "Hair/alice band"]),
    ),
    # H Children Sizes 92-140
    *_section(
        "H",
        46,
        "Kids Boy",
        (7648, "Kids Boy Jersey Fancy", 1005, ["T-shirt", "Hoodie", "Trousers", "Shorts"]),
        (7656, "Kids Boy Trouser", None, ["Trousers"]),
        (7956, "Kids Boy Denim", 1016, ["Trousers", "Shorts"]),
        (7658, "Kids Boy Knitwear", None, ["Sweater"]),
    ),
    *_section(
        "H",
        76,
        "Kids Girl",
        (7613, "Kids Girl Dresses", 1014, ["Dress", "Skirt"]),
        (7616, "Kids Girl Jersey Fancy", 1005, ["Top", "T-shirt", "Leggings/Tights"]),
        (7917, "Kids Girl Denim", 1016, ["Trousers", "Shorts"]),
    ),
    *_section(
        "H",
        79,
        "Girls Underwear & Basics",
        (7920, "Kids Girl Jersey Basic", 1002, ["T-shirt", "Leggings/Tights", "Vest top"]),
        (7921, "Kids Girl S&T", None, ["Socks", "Underwear Tights"]),
        (7922, "Kids Girl UW/NW", None, ["Underwear bottom", "Pyjama set", "Kids Underwear top"]),
    ),
    *_section(
        "H",
        72,
        "Boys Underwear & Basics",
        (7668, "Kids Boy Jersey Basic", 1002, ["T-shirt", "Trousers"]),
        (4214, "Kids Boy Socks", None, ["Socks"]),
        (4215, "Kids Boy UW/NW", None, ["Underwear bottom", "Pyjama set"]),
    ),
    *_section(
        "H",
        45,
        "Kids Outerwear",
        (7812, "Kids Girl Outdoor", 1007, ["Jacket", "Coat"]),
        (7852, "Kids Boy Outdoor", 1007, ["Jacket"]),
    ),
    # I Children Sizes 134-170
    *_section(
        "I",
        77,
        "Young Girl",
        (8713, "Young Girl Dresses", 1014, ["Dress", "Skirt"]),
        (8716, "Young Girl Jersey Fancy", 1005, ["Top", "T-shirt", "Hoodie", "Leggings/Tights"]),
        (8917, "Young Girl Denim", 1016, ["Trousers", "Shorts"]),
    ),
    *_section(
        "I",
        47,
        "Young Boy",
        (8748, "Young Boy Jersey Fancy", 1005, ["T-shirt", "Hoodie", "Trousers"]),
        (8755, "Young Boy Shorts", None, ["Shorts"]),
        (8956, "Young Boy Denim", 1016, ["Trousers"]),
    ),
    *_section(
        "I",
        79,
        "Girls Underwear & Basics",
        (7930, "Young Girl Jersey Basic", 1002, ["T-shirt", "Leggings/Tights"]),
        (7932, "Young Girl UW/NW", None, ["Underwear bottom", "Bra", "Pyjama set"]),
    ),
    *_section(
        "I",
        72,
        "Boys Underwear & Basics",
        (8768, "Young Boy Jersey Basic", 1002, ["T-shirt", "Trousers"]),
        (4225, "Young Boy UW/NW", None, ["Underwear bottom", "Socks"]),
    ),
    *_section(
        "I",
        45,
        "Kids Outerwear",
        (8812, "Young Girl Outdoor", 1007, ["Jacket", "Coat"]),
        (8852, "Young Boy Outdoor", 1007, ["Jacket"]),
    ),
    # J Children Accessories, Swimwear
    *_section(
        "J",
        42,
        "Kids & Baby Shoes",
        (4311, "Kids Girl Shoes", None, ["Sneakers", "Sandals", "Boots", "Ballerinas"]),
        (4211, "Kids Boy Shoes", None, ["Sneakers", "Sandals", "Boots"]),
        (6561, "Baby Shoes", None, ["Slippers", "Sneakers"]),
    ),
    *_section(
        "J",
        43,
        "Kids Accessories, Swimwear & D",
        (4310, "Kids Girl Swimwear", None, ["Swimsuit", "Bikini top", "Swimwear bottom"]),
        (4210, "Kids Boy Swimwear", None, ["Swimwear bottom"]),
        (4313, "Girls Small Acc/Bags", None, ["Hair string", "Hair/alice band", "Bag"]),
    ),
    *_section(
        "J",
        45,
        "Kids Outerwear",
        (4312, "Kids Girl Big Acc", None, ["Hat/beanie", "Gloves", "Scarf", "Cap/peaked"]),
        (4212, "Kids Boy Big Acc", None, ["Hat/beanie", "Cap/peaked", "Gloves"]),
    ),
]


@dataclass(frozen=True)
class Colour:
    code: int
    name: str
    value_id: int
    master_id: int
    rgb: tuple[int, int, int]
    weight: float  # share of the catalogue


PERCEIVED_VALUES = {
    1: "Dusty Light",
    2: "Medium Dusty",
    3: "Light",
    4: "Dark",
    5: "Bright",
    6: "Undefined",
    7: "Medium",
}
PERCEIVED_MASTERS = {
    1: "Mole",
    2: "Blue",
    3: "Orange",
    4: "Pink",
    5: "Black",
    6: "Lilac Purple",
    7: "Turquoise",
    8: "Yellow",
    9: "White",
    11: "Beige",
    12: "Grey",
    13: "Brown",
    15: "Metal",
    18: "Red",
    19: "Green",
    20: "Khaki green",
}

COLOURS = [
    Colour(9, "Black", 4, 5, (22, 22, 24), 1582),
    Colour(73, "Dark Blue", 4, 2, (31, 43, 84), 504),
    Colour(10, "White", 3, 9, (246, 246, 244), 473),
    Colour(51, "Light Pink", 1, 4, (241, 201, 206), 212),
    Colour(7, "Grey", 2, 12, (150, 150, 152), 212),
    Colour(72, "Blue", 7, 2, (58, 98, 170), 197),
    Colour(71, "Light Blue", 3, 2, (170, 200, 232), 166),
    Colour(8, "Dark Grey", 4, 12, (78, 78, 80), 151),
    Colour(43, "Dark Red", 4, 18, (118, 22, 32), 150),
    Colour(42, "Red", 5, 18, (204, 32, 42), 133),
    Colour(19, "Greenish Khaki", 2, 20, (120, 118, 78), 129),
    Colour(12, "Light Beige", 1, 11, (231, 216, 190), 124),
    Colour(6, "Light Grey", 3, 12, (202, 202, 204), 104),
    Colour(11, "Off White", 1, 9, (240, 235, 220), 102),
    Colour(13, "Beige", 2, 11, (200, 180, 150), 99),
    Colour(93, "Dark Green", 4, 19, (30, 80, 52), 91),
    Colour(52, "Pink", 7, 4, (230, 130, 162), 83),
    Colour(22, "Yellow", 5, 8, (240, 210, 60), 77),
    Colour(31, "Light Orange", 3, 3, (250, 190, 140), 52),
    Colour(17, "Yellowish Brown", 2, 13, (150, 110, 60), 45),
    Colour(53, "Dark Pink", 4, 4, (180, 60, 110), 45),
    Colour(5, "Gold", 6, 15, (200, 170, 80), 40),
    Colour(83, "Dark Turquoise", 4, 7, (20, 110, 110), 33),
    Colour(81, "Light Turquoise", 3, 7, (160, 220, 215), 29),
    Colour(3, "Silver", 6, 15, (190, 190, 200), 28),
    Colour(92, "Green", 7, 19, (60, 150, 80), 25),
    Colour(32, "Orange", 5, 3, (240, 130, 40), 23),
    Colour(14, "Dark Beige", 4, 11, (150, 130, 100), 23),
    Colour(63, "Dark Purple", 4, 6, (80, 40, 90), 18),
    Colour(23, "Dark Yellow", 4, 8, (190, 150, 30), 16),
    Colour(61, "Light Purple", 3, 6, (200, 180, 220), 11),
    Colour(15, "Greyish Beige", 1, 1, (180, 170, 150), 7),
]

# (graphical_appearance_no, name, weight); "Denim" is reserved for denim garment groups.
APPEARANCES = [
    (1010016, "Solid", 2660),
    (1010001, "All over pattern", 549),
    (1010010, "Melange", 391),
    (1010017, "Stripe", 272),
    (1010014, "Placement print", 124),
    (1010008, "Front print", 120),
    (1010004, "Check", 116),
    (1010021, "Lace", 110),
    (1010005, "Colour blocking", 85),
    (1010007, "Embroidery", 48),
    (1010006, "Dot", 21),
    (1010009, "Glittering/Metallic", 19),
    (1010023, "Denim", 0),
]
DENIM_APPEARANCE = 1010023
DENIM_GARMENT_GROUP = 1016

# Customer personas: how a customer's taste spreads over the indexes.
PERSONA_INDEX_WEIGHTS = {
    "ladies": {"A": 0.55, "B": 0.2, "C": 0.15, "D": 0.05, "S": 0.05},
    "young": {"D": 0.55, "C": 0.15, "B": 0.1, "A": 0.1, "S": 0.05, "F": 0.05},
    "men": {"F": 0.85, "S": 0.1, "D": 0.05},
    "parent": {"G": 0.2, "H": 0.25, "I": 0.2, "J": 0.1, "A": 0.2, "B": 0.05},
    "sport": {"S": 0.6, "A": 0.2, "F": 0.1, "D": 0.1},
}
# Persona mix per age bucket (16-24, 25-34, 35-49, 50-64, 65+).
AGE_BUCKET_EDGES = (25, 35, 50, 65)
PERSONA_MIX = {
    "ladies": (0.20, 0.40, 0.45, 0.65, 0.70),
    "young": (0.55, 0.10, 0.00, 0.00, 0.00),
    "men": (0.15, 0.15, 0.15, 0.15, 0.15),
    "parent": (0.00, 0.25, 0.30, 0.15, 0.15),
    "sport": (0.10, 0.10, 0.10, 0.05, 0.00),
}

# Words for product names and descriptions.
NAME_WORDS = [
    "Jerry",
    "Eva",
    "Austin",
    "Jenny",
    "Ellen",
    "Henrik",
    "Tilda",
    "Mona",
    "Luna",
    "Oscar",
    "Hanna",
    "Nora",
    "Felix",
    "Alva",
    "Stella",
    "Milo",
    "Vera",
    "Ida",
    "Elias",
    "Saga",
    "Bella",
    "Theo",
    "Maja",
    "Leo",
    "Ronja",
    "Otto",
    "Frida",
    "Hugo",
    "Tova",
    "Nils",
]
STYLE_WORDS = [
    "basic",
    "slim",
    "relaxed",
    "oversized",
    "cropped",
    "wide",
    "fitted",
    "soft",
    "ribbed",
    "linen",
    "cotton",
    "denim",
    "padded",
    "pleated",
    "frill",
    "wrap",
    "high waist",
    "lace",
    "printed",
    "striped",
    "knitted",
    "jersey",
    "shaped",
    "tapered",
    "tie-front",
    "2-pack",
]
FABRICS = [
    "Jersey",
    "Cotton",
    "Linen-blend",
    "Fine-knit",
    "Woven",
    "Ribbed",
    "Soft",
    "Denim",
    "Viscose",
    "Sturdy",
    "Airy",
    "Recycled polyester",
]
FEATURES = [
    "a round neckline",
    "a V-neck",
    "long sleeves",
    "short sleeves",
    "dropped shoulders",
    "an elasticated waist",
    "side pockets",
    "a zip at the back",
    "covered buttons",
    "a concealed zip",
    "a drawstring",
    "ribbing at the cuffs and hem",
    "a narrow belt",
    "a wide, flared hem",
    'a so-called "paperbag" waist',
    "adjustable shoulder straps",
    "a 7/8 length",
    "a rounded hem",
    "a press-stud at the top",
    "lined cups",
]
