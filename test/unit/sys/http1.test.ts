import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Http1Error, decodeHttp1Response, encodeHttp1Request } from '../../../src/sys/http1.ts';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

test('GET: request line, Host first, the given headers, Connection: close, no body', () => {
  const encoded = encodeHttp1Request({
    method: 'GET',
    path: '/api/v1/namespaces/default/pods/web-0?x=1',
    host: '10.96.0.1:443',
    headers: { Accept: 'application/json', Authorization: 'Bearer t' },
  });
  assert.equal(
    encoded.toString('latin1'),
    'GET /api/v1/namespaces/default/pods/web-0?x=1 HTTP/1.1\r\nHost: 10.96.0.1:443\r\nAccept: application/json\r\n' +
      'Authorization: Bearer t\r\nConnection: close\r\n\r\n',
  );
});

test('POST: Content-Length counts UTF-8 bytes and the body follows the head', () => {
  const encoded = encodeHttp1Request({
    method: 'POST',
    path: '/log',
    host: 'unix',
    headers: { 'Content-Type': 'application/json' },
    body: '["é"]',
  });
  const text = encoded.toString('utf8');
  assert.ok(text.startsWith('POST /log HTTP/1.1\r\nHost: unix\r\n'));
  assert.ok(text.endsWith('Connection: close\r\nContent-Length: 6\r\n\r\n["é"]'));
});

test('header injection and odd paths are refused before anything is sent', () => {
  const base = { method: 'GET', host: 'h', headers: {} } as const;
  assert.throws(() => encodeHttp1Request({ ...base, path: 'no-slash' }), Http1Error);
  assert.throws(() => encodeHttp1Request({ ...base, path: '/a b' }), Http1Error);
  assert.throws(
    () => encodeHttp1Request({ ...base, path: '/', headers: { Authorization: 'Bearer x\r\nEvil: 1' } }),
    Http1Error,
  );
  assert.throws(() => encodeHttp1Request({ ...base, path: '/', headers: { 'Bad Name': 'v' } }), Http1Error);
});

test('Content-Length: undefined until the whole body is there; extra bytes ignored', () => {
  const head = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n';
  assert.equal(decodeHttp1Response(bytes('HTTP/1.1 200 OK\r\nContent-Le'), false), undefined);
  assert.equal(decodeHttp1Response(bytes(`${head}{"a":`), false), undefined);
  const response = decodeHttp1Response(bytes(`${head}{"a":"bcd"}trailing`), false);
  assert.equal(response?.status, 200);
  assert.equal(response?.headers.get('content-type'), 'application/json');
  assert.equal(response?.body.toString(), '{"a":"bcd"}');
});

test('chunked: extensions and trailers, split anywhere, decoded once complete', () => {
  const wire =
    'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{"a"\r\nA\r\n:"0123456"\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n';
  for (let cut = 0; cut < wire.length; cut += 1) {
    assert.equal(decodeHttp1Response(bytes(wire.slice(0, cut)), false), undefined, `cut at ${cut}`);
  }
  const response = decodeHttp1Response(bytes(wire), false);
  assert.equal(response?.status, 404);
  assert.equal(response?.body.toString(), '{"a":"0123456"}');
});

test('no length and no chunking: the body ends with the connection', () => {
  const wire = bytes('HTTP/1.0 200 OK\r\nServer: x\r\n\r\nall of it');
  assert.equal(decodeHttp1Response(wire, false), undefined);
  assert.equal(decodeHttp1Response(wire, true)?.body.toString(), 'all of it');
});

test('an interim 1xx answer is skipped: the final response follows', () => {
  const wire = 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  assert.equal(decodeHttp1Response(bytes(wire.slice(0, 40)), false), undefined);
  const response = decodeHttp1Response(bytes(wire), false);
  assert.equal(response?.status, 200);
  assert.equal(response?.body.toString(), 'ok');
});

test('204 has no body; repeated headers are joined', () => {
  const response = decodeHttp1Response(bytes('HTTP/1.1 204 No Content\r\nVia: a\r\nvia: b\r\n\r\n'), false);
  assert.equal(response?.status, 204);
  assert.equal(response?.body.length, 0);
  assert.equal(response?.headers.get('via'), 'a, b');
});

test('malformed or truncated responses are errors, not hangs', () => {
  const cases: Array<[string, boolean, RegExp]> = [
    ['SSH-2.0-OpenSSH\r\n\r\n', false, /not an HTTP\/1\.x response/],
    ['HTTP/1.1 200 OK\r\nbroken\r\n\r\n', false, /invalid header line/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', false, /invalid content-length/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', false, /unsupported transfer-encoding/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', false, /invalid chunk size/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n', false, /chunk without CRLF/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab', true, /closed after 2 of 5 body bytes/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', true, /closed inside a chunked body/],
    ['HTTP/1.1 200 O', true, /closed before a complete response header/],
  ];
  for (const [wire, ended, message] of cases) {
    assert.throws(() => decodeHttp1Response(bytes(wire), ended), message, JSON.stringify(wire));
  }
});

test('header values with a bare CR or LF and paths with any whitespace are refused', () => {
  const base = { method: 'GET', host: 'h', headers: {} } as const;
  for (const value of ['Bearer x\nEvil: 1', 'Bearer x\rEvil: 1']) {
    assert.throws(
      () => encodeHttp1Request({ ...base, path: '/', headers: { Authorization: value } }),
      Http1Error,
      JSON.stringify(value),
    );
  }
  for (const path of ['/a\tb', '/a\r\nHost: evil', '/a\nb']) {
    assert.throws(() => encodeHttp1Request({ ...base, path }), Http1Error, JSON.stringify(path));
  }
});

test('the status line: a reason phrase is optional (as Go reads it); exactly three digits, at the start', () => {
  const bare = decodeHttp1Response(bytes('HTTP/1.1 404\r\nContent-Length: 2\r\n\r\n{}'), false);
  assert.equal(bare?.status, 404);
  assert.equal(bare?.body.toString(), '{}');
  for (const line of ['HTTP/1.1 2000 OK', 'HTTP/1.1 200OK', 'XHTTP/1.1 200 OK', ' HTTP/1.1 200 OK']) {
    assert.throws(
      () => decodeHttp1Response(bytes(`${line}\r\nContent-Length: 0\r\n\r\n`), false),
      /not an HTTP\/1\.x response/,
      line,
    );
  }
});

test('Transfer-Encoding: chunked wins over Content-Length (RFC 9112 §6.3), in any letter case', () => {
  for (const encoding of ['chunked', 'Chunked', 'CHUNKED']) {
    const wire = `HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: ${encoding}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
    assert.equal(decodeHttp1Response(bytes(wire.slice(0, -2)), false), undefined, encoding);
    assert.equal(decodeHttp1Response(bytes(wire), false)?.body.toString(), 'hello', encoding);
  }
});

test('Content-Length is decimal digits only: no exponent, hex, sign or trailing text', () => {
  for (const length of ['1e1', '0x4', '+4', '4x', '4, 4']) {
    assert.throws(
      () =>
        decodeHttp1Response(bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\n\r\n0123456789`), false),
      /invalid content-length/,
      length,
    );
  }
});

test('chunk sizes: whitespace before the extension or the line end, leading zeros up to 8 digits', () => {
  const wire =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n2 ;x=y\r\ncd\r\n00000002\r\nef\r\n0\r\n\r\n';
  assert.equal(decodeHttp1Response(bytes(wire), false)?.body.toString(), 'abcdef');
  // Nine hex digits (≥ 4 GiB) or anything after the digits is not a size any peer of ours sends: an error at once.
  for (const size of ['100000000', '2x', 'x2']) {
    assert.throws(
      () =>
        decodeHttp1Response(
          bytes(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\nab`),
          false,
        ),
      /invalid chunk size/,
      size,
    );
  }
});

test('304 has no body either, whatever its headers say', () => {
  const response = decodeHttp1Response(
    bytes('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n'),
    false,
  );
  assert.equal(response?.status, 304);
  assert.equal(response?.body.length, 0);
});
