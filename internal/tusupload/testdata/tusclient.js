// tusclient.js uploads one file with tus-js-client (the official tus client,
// installed in web/players/node_modules by `make deps`) for the tests of
// internal/tusupload.
//
//   node tusclient.js CONFIG_JSON
//
// CONFIG_JSON fields:
//   module      path of the tus-js-client package directory
//   endpoint    the upload collection URL (…/uploads/)
//   file        the file to upload
//   chunkSize   bytes per PATCH request
//   metadata    Upload-Metadata, an object of strings
//   headers     header fields sent with every request (Authorization)
//   urlStorage  a JSON file where tus-js-client stores the upload URLs by
//               file fingerprint (its FileUrlStorage), for resuming
//   resume      resume the upload stored in urlStorage for this file
//               (fail if there is none) instead of creating one
//   abortAfter  if > 0: while a PATCH is sending its body, stop after this
//               many bytes of the file have been sent in all and kill the
//               process (SIGKILL), so the connection drops mid-request
//
// It prints one JSON object per line on stdout: {"event": "request",
// "method", "offset"} for every request, {"event": "url", "url"} when the
// upload URL is known, {"event": "abort", "sent"} just before the kill,
// then {"event": "success", "url", "headers"} (the last answer's
// Jitstream-* headers) or {"event": "error", "message"}, exiting 0 or 1.
'use strict'

const fs = require('fs')
const { Transform } = require('stream')

const cfg = JSON.parse(process.argv[2])
const tus = require(cfg.module)

function emit(obj) {
  // Synchronous, so that nothing is lost when the process is killed.
  fs.writeSync(1, JSON.stringify(obj) + '\n')
}

// CuttingStack wraps tus-js-client's HTTP stack: it reports every request
// and, with abortAfter, cuts a PATCH body after that many bytes of the file
// and kills the process, as a dropped connection would.
class CuttingStack {
  constructor(inner, abortAfter) {
    this.inner = inner
    this.abortAfter = abortAfter
  }

  createRequest(method, url) {
    const req = this.inner.createRequest(method, url)
    const abortAfter = this.abortAfter
    const send = req.send.bind(req)
    req.send = (body) => {
      const offset = Number(req.getHeader('Upload-Offset') || 0)
      emit({ event: 'request', method, offset })
      if (method !== 'PATCH' || !(abortAfter > 0) || body == null || offset + body.size <= abortAfter) {
        return send(body)
      }
      let left = abortAfter - offset
      const cut = new Transform({
        transform(chunk, _enc, done) {
          if (left <= 0) return done()
          const part = chunk.length > left ? chunk.subarray(0, left) : chunk
          left -= part.length
          this.push(part)
          if (left === 0) {
            // Let the bytes reach the server, then die mid-request.
            setTimeout(() => {
              emit({ event: 'abort', sent: abortAfter })
              process.kill(process.pid, 'SIGKILL')
            }, 300)
          }
          done()
        },
      })
      cut.size = body.size
      return send(body.pipe(cut))
    }
    return req
  }

  getName() {
    return 'CuttingStack'
  }
}

async function main() {
  const urlStorage = new tus.FileUrlStorage(cfg.urlStorage)
  const file = fs.createReadStream(cfg.file)
  let upload
  const done = new Promise((resolve) => {
    upload = new tus.Upload(file, {
      endpoint: cfg.endpoint,
      chunkSize: cfg.chunkSize,
      metadata: cfg.metadata || {},
      headers: cfg.headers || {},
      urlStorage,
      retryDelays: [], // report errors at once
      httpStack: new CuttingStack(new tus.DefaultHttpStack(), cfg.abortAfter || 0),
      onUploadUrlAvailable() {
        emit({ event: 'url', url: upload.url })
      },
      onSuccess({ lastResponse }) {
        const headers = {}
        for (const h of ['Jitstream-Ingest-Status', 'Jitstream-Asset', 'Upload-Offset']) {
          const v = lastResponse && lastResponse.getHeader(h)
          if (v != null) headers[h] = v
        }
        emit({ event: 'success', url: upload.url, headers })
        resolve(0)
      },
      onError(err) {
        emit({ event: 'error', message: String(err) })
        resolve(1)
      },
    })
  })
  if (cfg.resume) {
    const previous = await upload.findPreviousUploads()
    if (previous.length === 0) {
      emit({ event: 'error', message: 'no stored upload to resume in ' + cfg.urlStorage })
      return 1
    }
    upload.resumeFromPreviousUpload(previous[0])
  }
  upload.start()
  return done
}

main().then(
  (code) => process.exit(code),
  (err) => {
    emit({ event: 'error', message: String(err && err.stack ? err.stack : err) })
    process.exit(1)
  },
)
