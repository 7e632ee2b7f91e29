"""load_file() in real containers: one test per category, each with a real sample file.

Samples the host can write with the standard library are written here; the others (Parquet,
Excel, HDF5...) are written by a first sandbox run with the image's own libraries, then stored for
the user exactly as an upload would be, and loaded by a second run.
"""

import io
import json
import sqlite3
import wave
import zipfile

from app.chat.run_files import run_inputs
from app.sandbox import RunRequest, RunStatus


def ok(result):
    assert result.status is RunStatus.OK, result.stderr
    return result.stdout.splitlines()


async def test_delimited_text_sniffs_delimiter_and_encoding(load):
    samples = {
        "europe.csv": "name;price\nCaf\u00e9;3,5\nTh\u00e9;2\n".encode("cp1252"),
        "bom.tsv": "\ufeffa\tb\n1\t2\n3\t4\n".encode("utf-8"),
        "pipes.csv": b"x|y\n1|2\n",
    }
    code = (
        "df = load_file('europe.csv')\n"
        "print(list(df.columns), df['name'].tolist())\n"
        "t = load_file('bom.tsv')\n"
        "print(list(t.columns), int(t['b'].sum()))\n"
        "print(list(load_file('pipes.csv').columns))\n"
    )
    lines = ok(await load(code, samples))
    assert lines == ["['name', 'price'] ['Caf\u00e9', 'Th\u00e9']", "['a', 'b'] 6", "['x', 'y']"]


async def test_spreadsheets_excel_and_ods(load):
    produce = (
        "import pandas as pd\n"
        "with pd.ExcelWriter('book.xlsx') as w:\n"
        "    pd.DataFrame({'a': [1, 2]}).to_excel(w, sheet_name='first', index=False)\n"
        "    pd.DataFrame({'b': [3, 4, 5]}).to_excel(w, sheet_name='second', index=False)\n"
        "pd.DataFrame({'c': [7, 8]}).to_excel('sheet.ods', index=False, engine='odf')\n"
    )
    code = (
        "print(load_file('book.xlsx')['a'].tolist())\n"
        "sheets = load_file('book.xlsx', all_sheets=True)\n"
        "print(sorted(sheets), sheets['second']['b'].sum())\n"
        "print(load_file('book.xlsx', sheet='second').shape)\n"
        "print(load_file('sheet.ods')['c'].tolist())\n"
    )
    lines = ok(await load(code, produce=produce))
    assert lines == ["[1, 2]", "['first', 'second'] 12", "(3, 1)", "[7, 8]"]


async def test_json_and_json_lines(load):
    samples = {
        "rows.json": json.dumps([{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]).encode(),
        "config.json": json.dumps({"model": {"depth": 3}}).encode(),
        "events.jsonl": b'{"e": "start", "t": 1}\n{"e": "stop", "t": 5}\n',
    }
    code = (
        "df = load_file('rows.json')\n"
        "print(type(df).__name__, df['x'].sum())\n"
        "print(load_file('config.json')['model']['depth'])\n"
        "print(type(load_file('rows.json', as_dataframe=False)).__name__)\n"
        "ev = load_file('events.jsonl')\n"
        "print(type(ev).__name__, ev['t'].tolist())\n"
    )
    assert ok(await load(code, samples)) == ["DataFrame 3", "3", "list", "DataFrame [1, 5]"]


async def test_columnar_parquet_feather_orc(load):
    produce = (
        "import pandas as pd\n"
        "df = pd.DataFrame({'k': ['a', 'b', 'c'], 'v': [1.5, 2.5, 3.0]})\n"
        "df.to_parquet('t.parquet'); df.to_feather('t.feather'); df.to_orc('t.orc')\n"
    )
    code = (
        "for name in ('t.parquet', 't.feather', 't.orc'):\n"
        "    df = load_file(name)\n"
        "    print(name, type(df).__name__, df['v'].sum(), df['k'].tolist())\n"
    )
    lines = ok(await load(code, produce=produce))
    assert lines == [
        f"{n} DataFrame 7.0 ['a', 'b', 'c']" for n in ("t.parquet", "t.feather", "t.orc")
    ]


async def test_statistical_stata_spss_sas(load):
    produce = (
        "import pandas as pd, pyreadstat\n"
        "df = pd.DataFrame({'age': [31.0, 45.0], 'score': [1.0, 2.0]})\n"
        "df.to_stata('survey.dta', write_index=False)\n"
        "pyreadstat.write_sav(df, 'survey.sav')\n"
        "pyreadstat.write_xport(df, 'survey.xpt')\n"
    )
    code = (
        "for name in ('survey.dta', 'survey.sav', 'survey.xpt'):\n"
        "    df = load_file(name)\n"
        "    print(name, type(df).__name__, sorted(c.lower() for c in df.columns), "
        "float(df.iloc[:, 0].sum()))\n"
    )
    lines = ok(await load(code, produce=produce))
    assert lines == [
        f"{n} DataFrame ['age', 'score'] 76.0" for n in ("survey.dta", "survey.sav", "survey.xpt")
    ]


async def test_hdf5_pandas_store_and_plain_h5py(load):
    produce = (
        "import pandas as pd, h5py, numpy as np\n"
        "pd.DataFrame({'a': [1, 2, 3]}).to_hdf('frame.h5', key='data')\n"
        "with h5py.File('raw.hdf5', 'w') as f:\n"
        "    f['signal'] = np.arange(10)\n"
    )
    code = (
        "df = load_file('frame.h5')\n"
        "print(type(df).__name__, df['a'].sum())\n"
        "raw = load_file('raw.hdf5')\n"
        "print(type(raw).__name__, int(raw['signal'][:].sum()))\n"
    )
    assert ok(await load(code, produce=produce)) == ["DataFrame 6", "File 45"]


async def test_numpy_npy_and_npz(load):
    produce = (
        "import numpy as np\n"
        "np.save('m.npy', np.arange(6).reshape(2, 3))\n"
        "np.savez('pack.npz', x=np.ones(3), y=np.zeros(2))\n"
    )
    code = (
        "m = load_file('m.npy')\n"
        "print(type(m).__name__, m.shape, int(m.sum()))\n"
        "p = load_file('pack.npz')\n"
        "print(sorted(p), float(p['x'].sum()))\n"
    )
    assert ok(await load(code, produce=produce)) == ["ndarray (2, 3) 15", "['x', 'y'] 3.0"]


async def test_matlab_mat(load):
    produce = "import numpy as np, scipy.io\nscipy.io.savemat('exp.mat', {'M': np.eye(3)})\n"
    code = "d = load_file('exp.mat')\nprint(sorted(d), float(d['M'].trace()))\n"
    assert ok(await load(code, produce=produce)) == ["['M'] 3.0"]


async def test_pickle_and_joblib(load):
    produce = (
        "import pickle, joblib\n"
        "pickle.dump({'weights': [1, 2, 3]}, open('model.pkl', 'wb'))\n"
        "joblib.dump({'k': 'v'}, 'model.joblib')\n"
    )
    code = "print(load_file('model.pkl')['weights'])\nprint(load_file('model.joblib'))\n"
    assert ok(await load(code, produce=produce)) == ["[1, 2, 3]", "{'k': 'v'}"]


async def test_sqlite_gives_a_read_only_connection(load, tmp_path):
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("create table orders (id integer, total real)")
        db.executemany("insert into orders values (?, ?)", [(1, 9.5), (2, 0.5)])
    db.close()
    code = (
        "con = load_file('shop.sqlite')\n"
        "print(con.execute('select count(*), sum(total) from orders').fetchone())\n"
        "import pandas as pd\n"
        "print(pd.read_sql('select * from orders', con)['id'].tolist())\n"
        "try:\n"
        "    con.execute('delete from orders')\n"
        "except Exception as e:\n"
        "    print('refused', type(e).__name__)\n"
    )
    lines = ok(await load(code, {"shop.sqlite": path.read_bytes()}))
    assert lines[:2] == ["(2, 10.0)", "[1, 2]"] and lines[2].startswith("refused")


async def test_yaml_toml_xml_ini(load):
    samples = {
        "conf.yaml": b"name: demo\nitems: [1, 2]\n",
        "multi.yml": b"a: 1\n---\na: 2\n",
        "pyproject.toml": b'[tool]\nname = "x"\nlevel = 3\n',
        "feed.xml": b"<root><item id='1'>a</item><item id='2'>b</item></root>",
        "setup.ini": b"[server]\nport = 8080\n",
    }
    code = (
        "print(load_file('conf.yaml'))\n"
        "print(load_file('multi.yml'))\n"
        "print(load_file('pyproject.toml')['tool'])\n"
        "root = load_file('feed.xml')\n"
        "print(root.tag, [i.get('id') for i in root])\n"
        "print(load_file('feed.xml', as_dataframe=True)['id'].tolist())\n"
        "print(load_file('setup.ini'))\n"
    )
    assert ok(await load(code, samples)) == [
        "{'name': 'demo', 'items': [1, 2]}",
        "[{'a': 1}, {'a': 2}]",
        "{'name': 'x', 'level': 3}",
        "root ['1', '2']",
        "[1, 2]",
        "{'server': {'port': '8080'}}",
    ]


async def test_images_open_as_pil(load):
    produce = (
        "from PIL import Image\n"
        "Image.new('RGB', (40, 20), 'red').save('red.png')\n"
        "Image.new('L', (8, 8), 128).save('grey.jpg')\n"
    )
    code = (
        "for name in ('red.png', 'grey.jpg'):\n"
        "    im = load_file(name)\n"
        "    print(type(im).__module__.split('.')[0], im.size, im.mode)\n"
        "print(load_file('red.png').getpixel((0, 0)))\n"
    )
    assert ok(await load(code, produce=produce)) == [
        "PIL (40, 20) RGB",
        "PIL (8, 8) L",
        "(255, 0, 0)",
    ]


async def test_audio_gives_data_and_rate(load):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 800)
    produce = "import numpy as np, soundfile\nsoundfile.write('tone.flac', np.zeros(4410), 44100)\n"
    code = (
        "data, rate = load_file('beep.wav')\n"
        "print(rate, len(data))\n"
        "data, rate = load_file('tone.flac')\n"
        "print(rate, len(data))\n"
    )
    lines = ok(await load(code, {"beep.wav": buffer.getvalue()}, produce=produce))
    assert lines == ["8000 800", "44100 4410"]


async def test_text_and_code_are_strings(load):
    samples = {
        "notes.txt": "na\u00efve caf\u00e9\n".encode("latin-1"),
        "script.py": b"def f():\n    return 1\n",
        "README": b"no extension, plain text\n",
    }
    code = (
        "print(repr(load_file('notes.txt')))\n"
        "print(load_file('script.py').splitlines()[0])\n"
        "print(load_file('README').strip())\n"
    )
    assert ok(await load(code, samples)) == [
        "'na\u00efve caf\u00e9\\n'",
        "def f():",
        "no extension, plain text",
    ]


async def test_archives_load_what_they_hold_or_give_their_path(load):
    one, several = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(one, "w") as z:
        z.writestr("inner.csv", "a\n1\n")
    with zipfile.ZipFile(several, "w") as z:
        z.writestr("inner.csv", "a\n1\n")
        z.writestr("notes.txt", "hello")
    code = (
        "import zipfile\n"
        "print(load_file('bundle.zip')['a'].tolist())\n"
        "print(load_file('disguised.csv')['a'].tolist())\n"
        "both = load_file('two.zip')\n"
        "print(sorted(both), both['notes.txt'])\n"
        "path = load_file('packed.7z')\n"
        "print(path == get_file_path('packed.7z'), path.startswith('/mnt/data/'))\n"
    )
    samples = {
        "bundle.zip": one.getvalue(),
        "disguised.csv": one.getvalue(),
        "two.zip": several.getvalue(),
        "packed.7z": b"7z\xbc\xaf\x27\x1c" + b"\x00" * 30,
    }
    result = await load(code, samples)
    assert ok(result) == ["[1]", "[1]", "['inner.csv', 'notes.txt'] hello", "True True"]
    assert "'bundle.zip' holds one file, 'inner.csv': loading it" in result.stderr
    assert (
        "'packed.7z' is an archive (7z) this sandbox cannot unpack: returning its path"
        in result.stderr
    )


async def test_unknown_binary_gives_bytes_with_a_note(load):
    code = "data = load_file('blob.qqq')\nprint(type(data).__name__, len(data))\n"
    result = await load(code, {"blob.qqq": b"\x00\x01\x02\xff" * 4})
    assert ok(result) == ["bytes 16"]
    assert "no reader for type 'binary'" in result.stderr


async def test_a_missing_library_is_named_not_a_bare_import_error(load):
    code = "x = 1\nshape = load_file('parcels.shp')\n"
    result = await load(code, {"parcels.shp": b"\x00\x00\x27\x0a" + b"\x00" * 96})
    assert result.status is RunStatus.ERROR
    assert (
        "MissingLibraryError: load_file('parcels.shp'): reading shapefile files needs the "
        "Python package geopandas, which is not installed in this sandbox" in result.stderr
    )
    assert 'File "<code>", line 2' in result.stderr
    assert "No module named" not in result.stderr


async def test_list_files_shows_id_name_type_size(load):
    code = "files = list_files()\nprint(files)\nprint([(f.id, f.name, f.type) for f in files])\n"
    result = await load(code, {"a.csv": b"a\n1\n", "b.parquet": b"PAR1" + b"\x00" * 10})
    lines = ok(result)
    assert lines[0].split() == ["id", "name", "type", "size"]
    assert any("a.csv" in line and "csv" in line and "4 B" in line for line in lines[1:3])
    assert "'b.parquet', 'parquet')" in lines[3]


async def test_a_run_sees_only_its_own_users_files(runner, store, tmp_path):
    await store.save("alice", "secret.csv", b"pin\n1234\n")
    await store.save("bob", "mine.csv", b"a\n1\n")
    input_dir, files = await run_inputs(store, "bob")
    code = (
        "import os\n"
        "print(sorted(f.name for f in list_files()))\n"
        "print(len(os.listdir('/mnt/data')))\n"
        "print(os.path.exists('/mnt/data/../alice'))\n"
    )
    result = await runner.run(
        RunRequest(
            code=code, user_id="bob", input_dir=input_dir, files=files, output_dir=tmp_path / "out"
        )
    )
    assert ok(result) == ["['mine.csv']", "1", "False"]
