"""``manage.py import_catalog``: a spreadsheet becomes published specials and lots, or nothing."""

from datetime import datetime
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from openpyxl import Workbook
from wagtail.images import get_image_model

from auction.models import Lot, Special
from cms import importing
from cms.models import LotPage, SpecialPage
from tests.factories import png_file
from tests.pages import special_page

# English wording checked here, as someone who picks English reads it (tests/test_translations.py: Chinese).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]

HEADER = (
    "special,preview_at,starts_at,ends_at,special_deposit,extension_seconds,"
    "lot,start_price,reserve_price,deposit,increment,description,image"
)
SPRING = "春季拍卖会,2030-04-28 10:00,2030-05-01T10:00:00+08:00,2030-05-01 20:00,5000,"
CALLIGRAPHY = "书画专场,2030-05-10T09:00,2030-05-12 10:00,2030-05-12 21:00,0,0"


def write_image(folder: Path, name: str, size: tuple[int, int] = (1200, 900)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(png_file(name, size=size).read())
    return path


def write_csv(tmp_path: Path, *rows: str, header: str = HEADER, bom: bool = False) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text(("\ufeff" if bom else "") + "\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def run_import(path: Path, *options: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("import_catalog", str(path), *options, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def refused_import(path: Path) -> list[str]:
    """Runs an import that must fail; returns the error lines it printed."""
    stderr = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_catalog", str(path), stdout=StringIO(), stderr=stderr)
    return stderr.getvalue().splitlines()


def catalog_counts() -> tuple[int, ...]:
    return (
        SpecialPage.objects.count(),
        LotPage.objects.count(),
        Special.objects.count(),
        Lot.objects.count(),
        get_image_model().objects.count(),
    )


def assert_image(value: dict | None) -> None:
    assert value is not None
    assert set(value) == {"url", "width", "height"}
    assert value["url"].startswith("http") and value["width"] > 0 and value["height"] > 0


def test_a_csv_becomes_published_specials_and_lots_as_the_api_shows_them(api, tmp_path):
    # given: two specials, three lots, images beside the file, a BOM from Excel
    write_image(tmp_path / "images", "vase.png")
    write_image(tmp_path / "images", "plate.png", size=(800, 800))
    path = write_csv(
        tmp_path,
        SPRING + ",青花瓷瓶,1200.50,1500,200,,高 32 厘米 & 口沿微损,images/vase.png",
        SPRING + ",粉彩盘,3800,,500,200,<p>直径 26 厘米，<strong>原装木盒</strong></p>,images/plate.png",
        CALLIGRAPHY + ",行书对联,2600,,300,,,",
        bom=True,
    )
    # when
    stdout, _ = run_import(path)
    # then: the summary names each special with its page and market ids
    spring = Special.objects.get(title="春季拍卖会")
    calligraphy = Special.objects.get(title="书画专场")
    assert f"special page {spring.page_id} (market id {spring.pk}): 春季拍卖会, 2 lot(s)" in stdout
    assert f"special page {calligraphy.page_id} (market id {calligraphy.pk}): 书画专场, 1 lot(s)" in stdout
    assert "Imported 2 special(s) and 3 lot(s)" in stdout

    listing = api.get("/specials").json()
    assert listing["count"] == 2
    by_title = {item["title"]: item for item in listing["items"]}
    assert by_title["春季拍卖会"]["lot_count"] == 2 and by_title["书画专场"]["lot_count"] == 1
    assert by_title["春季拍卖会"]["deposit"] == 500_000 and by_title["书画专场"]["deposit"] == 0
    assert by_title["春季拍卖会"]["preview_at"] == "2030-04-28T10:00:00+08:00"
    assert by_title["春季拍卖会"]["starts_at"] == "2030-05-01T10:00:00+08:00"
    assert by_title["春季拍卖会"]["ends_at"] == "2030-05-01T20:00:00+08:00"
    assert by_title["春季拍卖会"]["status"] == "upcoming"
    assert_image(by_title["春季拍卖会"]["cover"])  # the first lot's image
    assert by_title["书画专场"]["cover"] is None

    detail = api.get(f"/specials/{spring.pk}").json()
    assert [lot["title"] for lot in detail["lots"]] == ["青花瓷瓶", "粉彩盘"]
    assert [lot["start_price"] for lot in detail["lots"]] == [120_050, 380_000]
    assert all(lot["ends_at"] == "2030-05-01T20:00:00+08:00" for lot in detail["lots"])

    vase = api.get(f"/lots/{detail['lots'][0]['id']}").json()
    assert (vase["start_price"], vase["deposit"], vase["reserve_met"]) == (120_050, 20_000, False)
    assert vase["description"] == "<p>高 32 厘米 &amp; 口沿微损</p>"  # plain text, escaped
    assert len(vase["images"]) == 1
    assert_image(vase["images"][0])
    assert_image(vase["cover"])
    plate = api.get(f"/lots/{detail['lots'][1]['id']}").json()
    assert plate["increment"] == 20_000 and plate["next_min_bid"] == 380_000
    assert plate["description"] == "<p>直径 26 厘米，<strong>原装木盒</strong></p>"  # HTML kept

    couplet = Lot.objects.get(title="行书对联")
    assert (couplet.deposit, couplet.reserve_price, couplet.increment, couplet.description) == (30_000, 0, 0, "")
    assert not couplet.images.exists()
    # the terms the file left empty or zero
    assert (spring.extension_seconds, calligraphy.extension_seconds) == (300, 0)
    assert all(page.live for page in LotPage.objects.all()) and all(page.live for page in SpecialPage.objects.all())


def test_an_empty_extension_seconds_means_the_default_five_minutes(tmp_path):
    path = write_csv(tmp_path, SPRING + ",青花瓷瓶,1200,,,,,")
    run_import(path)
    assert Special.objects.get().extension_seconds == 300


def test_an_xlsx_workbook_with_typed_cells_imports_exactly(api, tmp_path):
    # given: numbers and date-times as Excel stores them (floats, naive date-times)
    write_image(tmp_path, "bowl.png")
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(","))
    start = datetime(2030, 6, 1, 10, 0)
    sheet.append(["夏季专场", datetime(2030, 5, 30, 9, 0), start, datetime(2030, 6, 1, 20, 30), 1000, None,
                  "宋 青白釉碗", 1200.5, 2000, 100.25, None, "南宋", "bowl.png"])
    sheet.append(["夏季专场", datetime(2030, 5, 30, 9, 0), start, datetime(2030, 6, 1, 20, 30), 1000.0, 300,
                  1001, "88.8", None, None, 50, None, None])
    workbook.create_sheet("notes").append(["ignored: only the first sheet is read"])
    path = tmp_path / "catalog.xlsx"
    workbook.save(path)
    # when
    run_import(path)
    # then
    special = Special.objects.get()
    body = api.get(f"/specials/{special.pk}").json()
    assert (body["title"], body["deposit"], body["lot_count"]) == ("夏季专场", 100_000, 2)
    assert (body["starts_at"], body["ends_at"]) == ("2030-06-01T10:00:00+08:00", "2030-06-01T20:30:00+08:00")
    assert [(lot["title"], lot["start_price"]) for lot in body["lots"]] == [("宋 青白釉碗", 120_050), ("1001", 8_880)]
    bowl = Lot.objects.get(title="宋 青白釉碗")
    assert (bowl.reserve_price, bowl.deposit, bowl.increment) == (200_000, 10_025, 0)
    assert_image(api.get(f"/lots/{bowl.pk}").json()["images"][0])
    assert Lot.objects.get(title="1001").increment == 5_000


def test_a_file_with_several_bad_rows_is_refused_whole_with_every_error_by_row(tmp_path):
    # given: a good row, then bad ones spread over the file
    before = catalog_counts()
    path = write_csv(
        tmp_path,
        SPRING + ",好的拍品,1200,,,,,",
        SPRING + ",,abc,,,,,",
        "春季拍卖会,2030-04-28 10:00,2030-05-01 10:00,2030-05-01 20:00,5000,,价格为零,0,,-5,,,",
        "秋季拍卖会,昨天,2030-09-01 10:00,2030-09-01 09:00,,,秋拍一号,100,,,,,",
        "秋季拍卖会,2030-08-28 10:00,2030-09-01 10:00,2030-09-01 12:00,,-1,秋拍二号,100,,,,,",
        "冬季拍卖会,2030-11-28 10:00,2030-12-01 10:00,2030-12-01 09:00,,,冬拍一号,100,,,,,",
    )
    # when
    errors = refused_import(path)
    # then
    assert errors == [
        "row 3: lot: required",
        "row 3: start_price: “abc” is not an amount in yuan",
        "row 4: deposit: an amount cannot be negative",
        "row 4: start_price: The start price must be more than 0.",
        "row 5: preview_at: “昨天” is not an ISO 8601 time such as 2030-05-01 20:00",
        "row 6: extension_seconds: must be 0 (off) or a positive number of seconds",
        "row 7: ends_at: The end time must be after the start time.",
    ]
    assert catalog_counts() == before


def test_rows_of_one_special_must_agree_on_its_columns(tmp_path):
    path = write_csv(
        tmp_path,
        SPRING + ",第一件,1200,,,,,",
        "春季拍卖会,2030-04-28 10:00,2030-05-01 11:00,2030-05-01 20:00,5000.00,,第二件,1200,,,,,",
        "春季拍卖会,2030-04-28 10:00,2030-05-01 10:00,2030-05-01 20:00,6000,60,第三件,1200,,,,,",
    )
    errors = refused_import(path)
    assert errors == [
        "row 3: starts_at: differs from row 2, the first row of special “春季拍卖会”",
        "row 4: special_deposit: differs from row 2, the first row of special “春季拍卖会”",
        "row 4: extension_seconds: differs from row 2, the first row of special “春季拍卖会”",
    ]
    assert Special.objects.count() == 0


@pytest.mark.parametrize("amount", ["1200.505", "0.001"])
def test_more_than_two_decimals_is_refused(tmp_path, amount):
    path = write_csv(tmp_path, SPRING + f",青花瓷瓶,{amount},,,,,")
    assert refused_import(path) == ["row 2: start_price: an amount has at most two decimals (fen)"]


def test_an_xlsx_number_with_a_third_decimal_is_refused_not_rounded(tmp_path):
    workbook = Workbook()
    workbook.active.append(HEADER.split(","))
    workbook.active.append(["春季拍卖会", "2030-04-28 10:00", "2030-05-01 10:00", "2030-05-01 20:00", None, None,
                            "青花瓷瓶", 1200.505, 1e40, None, None, None, None])
    path = tmp_path / "catalog.xlsx"
    workbook.save(path)
    assert refused_import(path) == [
        "row 2: start_price: an amount has at most two decimals (fen)",
        "row 2: reserve_price: an amount this large is not plausible",
    ]


def test_a_reserve_below_the_start_price_is_refused_with_the_editors_message(tmp_path):
    path = write_csv(tmp_path, SPRING + ",青花瓷瓶,1200,1000,,,,")
    assert refused_import(path) == [
        "row 2: reserve_price: The reserve (¥1,000) cannot be below the start price (¥1,200); "
        "leave it at 0 for no reserve."
    ]
    assert Lot.objects.count() == 0


def test_a_missing_or_unreadable_image_is_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    path = write_csv(
        tmp_path,
        SPRING + ",青花瓷瓶,1200,,,,,images/missing.png",
        SPRING + ",粉彩盘,1200,,,,,notes.png",
    )
    errors = refused_import(path)
    assert errors[0] == f"row 2: image: no image file at {tmp_path / 'images' / 'missing.png'}"
    assert errors[1].startswith("row 3: image: ")
    assert len(errors) == 2
    assert catalog_counts() == (0, 0, 0, 0, 0)


def test_a_header_with_missing_or_unknown_columns_is_refused(tmp_path):
    path = write_csv(tmp_path, "春季拍卖会,青花瓷瓶,1200", header="special,lot,start_prise")
    errors = refused_import(path)
    assert errors[0].startswith("row 1: start_prise: unknown column; the columns are special, preview_at")
    assert errors[1:] == [
        "row 1: preview_at: required column missing",
        "row 1: starts_at: required column missing",
        "row 1: ends_at: required column missing",
        "row 1: start_price: required column missing",
    ]


def test_optional_columns_may_be_left_out_of_the_header(tmp_path):
    path = write_csv(
        tmp_path,
        "春季拍卖会,2030-04-28 10:00,2030-05-01 10:00,2030-05-01 20:00,青花瓷瓶,1200",
        header="special,preview_at,starts_at,ends_at,lot,start_price",
    )
    run_import(path)
    lot = Lot.objects.get()
    assert (lot.start_price, lot.reserve_price, lot.deposit, lot.special.extension_seconds) == (120_000, 0, 0, 300)


def test_a_special_that_already_exists_is_refused_rather_than_duplicated(tmp_path):
    special_page(title="春季拍卖会")
    before = catalog_counts()
    path = write_csv(tmp_path, SPRING + ",青花瓷瓶,1200,,,,,", SPRING + ",粉彩盘,1200,,,,,")
    assert refused_import(path) == [
        "row 2: special: a special titled “春季拍卖会” already exists; rename it in the file or add its lots in the admin"
    ]
    assert catalog_counts() == before


def test_a_failure_while_creating_leaves_nothing_behind(tmp_path):
    # given: a valid plan, and a failure after the first special's pages exist
    write_image(tmp_path, "vase.png")
    path = write_csv(tmp_path, SPRING + ",青花瓷瓶,1200,,,,,vase.png", CALLIGRAPHY + ",行书对联,2600,,,,,")
    plan = importing.catalog_plan(path)
    pages = []

    def fail_on_the_third_page(count: int) -> None:
        pages.append(count)
        if len(pages) == 3:
            raise RuntimeError("the disk is full")

    # when
    with pytest.raises(RuntimeError):
        importing.catalog_create(plan, advance=fail_on_the_third_page)
    # then: no rows, and no image file left in storage
    assert catalog_counts() == (0, 0, 0, 0, 0)
    stored = Path(settings.MEDIA_ROOT) / "original_images"
    assert not stored.exists() or not any(stored.iterdir())


def test_the_example_file_in_the_docs_imports_cleanly():
    example = Path(settings.BASE_DIR) / "docs" / "catalog-example.csv"
    stdout, stderr = run_import(example, "--no-progress")
    assert "Imported 2 special(s) and 4 lot(s)" in stdout and stderr == ""
    assert Special.objects.filter(is_published=True).count() == 2
    assert Lot.objects.filter(is_published=True).count() == 4


@pytest.mark.parametrize(
    ("value", "fen"),
    [("1200", 120_000), ("1200.50", 120_050), (1200.5, 120_050), (1200, 120_000), (0.1, 10), ("1,200", 120_000)],
)
def test_yuan_cells_convert_to_fen_without_floating_point_error(value, fen):
    assert importing.parse_yuan(value) == fen


def test_plain_text_descriptions_become_escaped_paragraphs():
    assert importing.description_html("第一段\n续行\n\n第二段 <3") == "<p>第一段<br/>续行</p><p>第二段 &lt;3</p>"
    assert importing.description_html("<p>已是 HTML</p>") == "<p>已是 HTML</p>"
