"""Media on object storage (``AUCTION_MEDIA_STORAGE=s3``): what an editor uploads
in the admin, the renditions cut from it, a catalog import's images and the
demo's all land in the bucket, and the API serves them on the public base URL.

The bucket is on a real S3 HTTP API on loopback (moto's server mode, its own
process: tests/servers.py ``S3Server``), reached by django-storages and boto3
exactly as production reaches its object storage; the tests look into it with
a boto3 client of their own and fetch the URLs the API gave.
"""

import json
import re
import uuid
from dataclasses import dataclass
from io import StringIO

import httpx
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from wagtail.images import get_image_model

from auction.images import COVER_SPEC, GALLERY_SPEC
from auction.models import Lot
from project.media import MediaSettingsError, media_base_url, media_storage
from tests.factories import ImageFactory, LotFactory, png_file
from tests.servers import S3Server
from tests.test_import_catalog import CALLIGRAPHY, SPRING, run_import, write_csv, write_image
from tests.test_settings import _run

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


@dataclass
class Bucket:
    name: str
    base_url: str
    server: S3Server

    def keys(self) -> set[str]:
        listing = self.server.client().list_objects_v2(Bucket=self.name)
        return {item["Key"] for item in listing.get("Contents", [])}

    def key_of(self, url: str) -> str:
        assert url.startswith(self.base_url), url
        return url[len(self.base_url):].split("?")[0]


def s3_environment(server: S3Server, bucket: str, *, base_url: str | None) -> dict[str, str]:
    environ = {
        "AUCTION_MEDIA_STORAGE": "s3", "AUCTION_S3_BUCKET": bucket, "AUCTION_S3_ENDPOINT_URL": server.url,
        "AUCTION_S3_ACCESS_KEY": server.ACCESS_KEY, "AUCTION_S3_SECRET_KEY": server.SECRET_KEY, "AUCTION_S3_REGION": server.REGION,
    }
    if base_url:
        environ["AUCTION_MEDIA_BASE_URL"] = base_url
    return environ


def use_bucket(settings, server: S3Server, *, base_url: bool = True) -> Bucket:
    """A new bucket, and the site's storage on it, as these settings read from the environment."""
    name = f"media-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=name)
    # The bucket's own address stands in for the CDN: what the API serves can be
    # fetched, anonymously, as a CDN's origin or a public-read bucket is.
    public = f"{server.url}/{name}/" if base_url else None
    if public:
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}]}
        server.client().put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    environ = s3_environment(server, name, base_url=public)
    settings.STORAGES = {**settings.STORAGES, "default": media_storage(environ, media_root=str(settings.MEDIA_ROOT), media_url="/media/")}
    settings.MEDIA_URL = media_base_url(environ) or "/media/"
    return Bucket(name=name, base_url=public or f"{server.url}/{name}/", server=server)


@pytest.fixture
def bucket(settings, s3_server) -> Bucket:
    return use_bucket(settings, s3_server)


def fetch(url: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as http:
        return http.get(url)


def all_image_urls(api) -> list[str]:
    urls = []
    for special in api.get("/specials").json()["items"]:
        if special["cover"]:
            urls.append(special["cover"]["url"])
        for summary in api.get(f"/specials/{special['id']}").json()["lots"]:
            lot = api.get(f"/lots/{summary['id']}").json()
            urls += [picture["url"] for picture in [lot["cover"], *lot["images"]] if picture]
    return urls


# --- settings ------------------------------------------------------------------------------------------


def test_local_disk_is_the_default_and_s3_needs_a_bucket(tmp_path):
    local = media_storage({}, media_root=str(tmp_path), media_url="/media/")
    assert local["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert local["OPTIONS"] == {"location": str(tmp_path), "base_url": "/media/"}
    with pytest.raises(MediaSettingsError, match="AUCTION_S3_BUCKET"):
        media_storage({"AUCTION_MEDIA_STORAGE": "s3"}, media_root="", media_url="")
    with pytest.raises(MediaSettingsError, match="'local' or 's3'"):
        media_storage({"AUCTION_MEDIA_STORAGE": "ftp"}, media_root="", media_url="")
    with pytest.raises(MediaSettingsError, match="http"):
        media_storage({"AUCTION_MEDIA_STORAGE": "s3", "AUCTION_S3_BUCKET": "b", "AUCTION_MEDIA_BASE_URL": "cdn.example.com"},
                      media_root="", media_url="")


def test_a_base_url_means_unsigned_urls_on_it_and_none_means_signed_ones():
    environ = {"AUCTION_MEDIA_STORAGE": "s3", "AUCTION_S3_BUCKET": "lots", "AUCTION_MEDIA_BASE_URL": "https://cdn.example.com/media/"}
    options = media_storage(environ, media_root="", media_url="")["OPTIONS"]
    assert (options["custom_domain"], options["url_protocol"], options["querystring_auth"]) == ("cdn.example.com/media", "https:", False)
    assert options["region_name"] == "us-east-1" and options["file_overwrite"] is False
    assert media_base_url(environ) == "https://cdn.example.com/media/"
    signed = media_storage({"AUCTION_MEDIA_STORAGE": "s3", "AUCTION_S3_BUCKET": "lots", "AUCTION_S3_REGION": "cn-north-1"},
                           media_root="", media_url="")["OPTIONS"]
    assert signed["querystring_auth"] is True and "custom_domain" not in signed and signed["region_name"] == "cn-north-1"


def test_the_settings_module_reads_them_from_the_environment(tmp_path):
    code = ("import json; from django.conf import settings as s; "
            "print(json.dumps({'storage': s.STORAGES['default'], 'media_url': s.MEDIA_URL, 'serve': s.AUCTION_SERVE_MEDIA}))")
    result = _run(["-c", code], AUCTION_VAR_DIR=str(tmp_path), AUCTION_MEDIA_STORAGE="s3", AUCTION_S3_BUCKET="lots",
                  AUCTION_S3_ENDPOINT_URL="https://s3.internal:9000", AUCTION_MEDIA_BASE_URL="https://cdn.example.com/m")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["storage"]["BACKEND"] == "storages.backends.s3.S3Storage"
    assert values["storage"]["OPTIONS"]["endpoint_url"] == "https://s3.internal:9000"
    assert values["media_url"] == "https://cdn.example.com/m/" and values["serve"] is False
    # and a bucket forgotten stops the process at its start, not at the first upload
    refused = _run(["-c", code], AUCTION_VAR_DIR=str(tmp_path), AUCTION_MEDIA_STORAGE="s3")
    assert refused.returncode != 0 and "AUCTION_S3_BUCKET" in refused.stderr
    # and the embedded default is still local disk, served by Django
    local = json.loads(_run(["-c", code], AUCTION_VAR_DIR=str(tmp_path)).stdout)
    assert local["storage"]["BACKEND"].endswith("FileSystemStorage") and local["serve"] is True


# --- the bucket ----------------------------------------------------------------------------------------


def test_an_image_uploaded_in_the_admin_and_its_rendition_are_in_the_bucket(client, django_user_model, bucket):
    # given: an editor in the Wagtail admin
    client.force_login(django_user_model.objects.create_superuser("editor", "editor@example.com", "pw-editor-12345"))
    # when: they upload a photo
    response = client.post("/admin/images/add/", {"title": "青花瓷瓶", "file": png_file("vase.png", size=(1600, 1200))})
    # then: the original is in the bucket, nowhere on disk
    assert response.status_code == 302, response.content[:2000]
    image = get_image_model().objects.get(title="青花瓷瓶")
    assert image.file.name in bucket.keys() and image.file.name.startswith("original_images/")
    assert (image.width, image.height) == (1600, 1200)
    # and a rendition Wagtail cuts from it (reading the original back from the bucket) is stored beside it
    rendition = image.get_rendition(COVER_SPEC)
    assert rendition.file.name in bucket.keys()
    assert rendition.url.startswith(bucket.base_url) and "X-Amz-Signature" not in rendition.url
    served = fetch(rendition.url)
    assert served.status_code == 200 and served.content[:3] == b"\xff\xd8\xff"  # a JPEG, as the spec asks
    # and the admin's own thumbnail of it is there too
    assert client.get(f"/admin/images/{image.pk}/").status_code == 200
    assert any(key.startswith("images/") and ".max-800x600" in key for key in bucket.keys())


def test_two_uploads_of_one_file_name_keep_both(bucket):
    first = ImageFactory(file=png_file("IMG_0001.png", color="#000000"))
    second = ImageFactory(file=png_file("IMG_0001.png", color="#ffffff"))
    assert first.file.name != second.file.name
    assert {first.file.name, second.file.name} <= bucket.keys()


def test_a_catalog_import_puts_its_images_in_the_bucket_and_the_api_serves_them_from_the_base_url(api, tmp_path, bucket):
    # given: a catalog with two images beside it
    write_image(tmp_path / "images", "vase.png")
    write_image(tmp_path / "images", "plate.png", size=(800, 800))
    path = write_csv(tmp_path, SPRING + ",青花瓷瓶,1200,,200,,,images/vase.png", SPRING + ",粉彩盘,3800,,500,,,images/plate.png",
                     CALLIGRAPHY + ",行书对联,2600,,300,,,")
    # when
    run_import(path)
    # then: every picture the API shows is on the public base URL
    urls = all_image_urls(api)
    # and both originals and their renditions are objects in the bucket
    keys = bucket.keys()
    originals = {image.file.name for image in get_image_model().objects.all()}
    assert len(originals) == 2 and originals <= keys
    for image in get_image_model().objects.all():
        for spec in (COVER_SPEC, GALLERY_SPEC):
            assert image.get_rendition(spec).file.name in keys
    # and each URL is one of those objects, fetchable
    assert len(urls) >= 5  # the special's cover, each lot's cover and gallery
    for url in urls:
        assert url.startswith(bucket.base_url), url
        assert bucket.key_of(url) in keys
    assert fetch(urls[0]).status_code == 200
    # and nothing went to local disk
    assert not Lot.objects.filter(title="行书对联").get().images.exists()


def test_a_failed_import_removes_the_images_it_wrote_to_the_bucket(tmp_path, bucket):
    # given: a valid plan, and a failure after the first special's pages (and its image) exist
    from cms import importing

    write_image(tmp_path, "vase.png")
    plan = importing.catalog_plan(write_csv(tmp_path, SPRING + ",青花瓷瓶,1200,,,,,vase.png", CALLIGRAPHY + ",行书对联,2600,,,,,"))
    pages = []

    def fail_on_the_third_page(count: int) -> None:
        pages.append(count)
        if len(pages) == 3:
            raise RuntimeError("the disk is full")

    # when
    with pytest.raises(RuntimeError):
        importing.catalog_create(plan, advance=fail_on_the_third_page)
    # then: the bucket holds no original it wrote (storage is not in the transaction)
    assert not [key for key in bucket.keys() if key.startswith("original_images/")]


def test_the_demo_seeds_its_pictures_into_the_bucket(api, bucket):
    # when
    call_command("demo", stdout=StringIO())
    # then: every picture the API serves is on the base URL
    urls = all_image_urls(api)
    assert urls and all(url.startswith(bucket.base_url) for url in urls)
    # and each image of the demo is in the bucket, and so is each rendition served
    keys = bucket.keys()
    originals = {image.file.name for image in get_image_model().objects.all()}
    assert len(originals) >= 10 and originals <= keys
    assert {bucket.key_of(url) for url in urls} <= keys
    assert default_storage.exists(next(iter(originals)))


def test_without_a_base_url_the_api_serves_signed_urls_of_the_endpoint(settings, s3_server):
    # given: a private bucket, no CDN
    bucket = use_bucket(settings, s3_server, base_url=False)
    image = ImageFactory(file=png_file("private.png"))
    # when
    url = image.get_rendition(COVER_SPEC).url
    # then: the endpoint's own URL, signed, which the server honours
    assert url.startswith(f"{s3_server.url}/{bucket.name}/images/")
    assert re.search(r"[?&]X-Amz-Signature=", url) and re.search(r"[?&]X-Amz-Expires=3600", url)
    assert fetch(url).status_code == 200


def test_an_original_gone_from_the_bucket_leaves_the_lot_readable_without_it(api, bucket):
    # given: a published lot whose cover's original was deleted from the bucket by hand
    cover = ImageFactory()
    lot = LotFactory(cover=cover)
    bucket.server.client().delete_object(Bucket=bucket.name, Key=cover.file.name)
    # when / then: the lot answers, without its cover, instead of a 500
    answer = api.get(f"/lots/{lot.pk}")
    assert answer.status_code == 200, answer.content
    assert answer.json()["cover"] is None
