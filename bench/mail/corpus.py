#!/usr/bin/env python3
"""Writes the mail benchmark's corpus: N messages as DIR/NNNNN.eml plus DIR/index.tsv
(file, kind, envelope sender, envelope recipient), the same for every seed.

Kinds (share of N): text (plain prose, 0.5-8 KB), html (multipart/alternative, up to
60 KB), attach (a PDF, DOCX, JPEG or PNG of 20-300 KB), large (a 1-4 MB PDF or JPEG),
zip (an ordinary archive of documents), ni-subject / ni-body (a UK National Insurance
number such as "QQ 12 34 56 C" in the subject, or in the text to an outside address),
exe-pdf (a Windows program renamed .pdf), zip-scr (a zip holding a .scr), blocked (from
a sender the WCS policy blocks). Names and numbers are made up.
"""
import email.policy, io, os, random, sys, zipfile
from email.message import EmailMessage

out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3000
rnd = random.Random(int(os.environ.get("SEED", "21")))
os.makedirs(out, exist_ok=True)

MIX = [("text", 42), ("html", 20), ("attach", 15), ("large", 3), ("zip", 4),
       ("ni-subject", 3), ("ni-body", 4), ("exe-pdf", 4), ("zip-scr", 3), ("blocked", 2)]
PE = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8" + b"\x00" * 43
      + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00\x4c\x01" + b"\x00" * 62)
WORDS = ("the a of to and in for is on that with as please year group form pupils parents "
         "trip coach homework lesson timetable assembly governors meeting report term "
         "science maths english history geography music sport fixture uniform lunch "
         "register attendance minutes agenda deadline marking moderation exam results "
         "revision club after school Friday Monday library reading book permission slip "
         "thank you regards kind best wishes head teacher office reception staff room "
         "safeguarding training inset day calendar update reminder letter newsletter").split()
FIRST = ["Amira", "Ben", "Chloe", "Dylan", "Ella", "Farid", "Grace", "Harry", "Isla", "Jack"]
LAST = ["Smith", "Jones", "Patel", "Khan", "Brown", "Taylor", "Wilson", "Evans"]
NI_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NI_SECOND = "ABCEGHJKLMNPRSTWXYZ"

def prose(size):
    words, total = [], 0
    while total < size:
        sentence = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 18))).capitalize() + "."
        words.append(sentence)
        total += len(sentence) + 1
        if rnd.random() < 0.15:
            words.append("\n\n")
    return " ".join(words) + "\n"

def ni():
    a, b = rnd.choice(NI_FIRST), rnd.choice(NI_SECOND)
    while a + b in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ") or a + b[0] == "O":
        a, b = rnd.choice(NI_FIRST), rnd.choice(NI_SECOND)
    d = [rnd.randint(0, 99) for _ in range(3)]
    return f"{a}{b} {d[0]:02d} {d[1]:02d} {d[2]:02d} {rnd.choice('ABCD')}"

def staff():
    return f"{rnd.choice(FIRST).lower()}.{rnd.choice(LAST).lower()}{rnd.randint(1, 200)}@wcs.london"

def outside():
    return f"{rnd.choice(FIRST).lower()}{rnd.randint(1, 999)}@{rnd.choice(['gmail.com', 'outlook.com', 'example.org', 'btinternet.com'])}"

def envelope(kind):
    if kind == "blocked":
        return f"offers{rnd.randint(1, 99)}@bulk-offers.example", staff()
    if kind in ("ni-body",):
        return staff(), outside()
    r = rnd.random()
    if r < 0.4:
        return staff(), staff()          # internal
    if r < 0.7:
        return outside(), staff()        # inbound
    return staff(), outside()            # outbound

def message(sender, to, subject, body, i):
    m = EmailMessage(policy=email.policy.SMTP)
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Date"] = f"Mon, 07 Dec 2026 {8 + i % 9:02d}:{i % 60:02d}:00 +0000"
    m["Message-ID"] = f"<bench-{i}.{rnd.randint(0, 1 << 30)}@{sender.split('@')[1]}>"
    m.set_content(body)
    return m

def pdf(size):
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    return head + b"3 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % size + rnd.randbytes(size) + b"\nendstream\nendobj\n%%EOF\n"

def jpeg(size):
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + rnd.randbytes(size) + b"\xff\xd9"

def png(size):
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rnd.randbytes(size)

def docx(size):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("_rels/.rels", "<Relationships/>")
        z.writestr("word/document.xml", "<w:document><w:body>" + prose(size) + "</w:body></w:document>")
        z.writestr("word/media/image1.png", png(size // 2))
    return buf.getvalue()

ATTACH = [("application", "pdf", "pdf", pdf), ("image", "jpeg", "jpg", jpeg), ("image", "png", "png", png),
          ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", docx)]

kinds = [k for k, share in MIX for _ in range(share)]
index = []
for i in range(n):
    kind = kinds[i % len(kinds)] if i < len(kinds) * (n // len(kinds)) else rnd.choice(kinds)
    sender, to = envelope(kind)
    subject = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 7))).capitalize()
    body = prose(rnd.randint(500, 8000))
    if kind == "ni-subject":
        subject = f"New starter {rnd.choice(FIRST)} {rnd.choice(LAST)} {ni()}"
    if kind == "ni-body":
        body += f"\n{rnd.choice(FIRST)} {rnd.choice(LAST)}, National Insurance number {ni()}.\n"
    m = message(sender, to, subject, body, i)
    if kind == "html":
        paras = "".join(f"<p style=\"font-family:Arial\">{prose(rnd.randint(200, 1500))}</p>"
                        f"<a href=\"https://www.wcs.london/news/{rnd.randint(1, 500)}\">Read more</a>"
                        for _ in range(rnd.randint(2, 20)))
        m.add_alternative(f"<html><head><title>{subject}</title></head><body>{paras}</body></html>", subtype="html")
    elif kind in ("attach", "large"):
        maintype, subtype, ext, make = rnd.choice(ATTACH if kind == "attach" else ATTACH[:2])
        size = rnd.randint(20_000, 300_000) if kind == "attach" else rnd.randint(1_000_000, 4_000_000)
        m.add_attachment(make(size), maintype=maintype, subtype=subtype, filename=f"document-{i}.{ext}")
    elif kind == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("minutes.txt", prose(rnd.randint(2000, 20000)))
            z.writestr("photo.jpg", jpeg(rnd.randint(10_000, 80_000)))
        m.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename=f"pack-{i}.zip")
    elif kind == "exe-pdf":
        m.add_attachment(PE + rnd.randbytes(rnd.randint(5_000, 200_000)), maintype="application",
                         subtype="pdf", filename=f"invoice-{i}.pdf")
    elif kind == "zip-scr":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("photos/beach.jpg", jpeg(rnd.randint(1000, 30_000)))
            z.writestr("photos/slideshow.scr", PE + rnd.randbytes(rnd.randint(1000, 50_000)))
        m.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename="explore.zip")
    name = f"{i:05d}.eml"
    with open(os.path.join(out, name), "wb") as f:
        f.write(m.as_bytes())
    index.append(f"{name}\t{kind}\t{sender}\t{to}\n")
with open(os.path.join(out, "index.tsv"), "w") as f:
    f.writelines(index)
