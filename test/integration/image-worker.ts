/**
 * A separate Node process using a store (run with vite-node by image-processes.test.ts):
 *   image-worker.ts <store> import <archive> [hang]   prints {"digest"} when done; with `hang`, stops
 *                                                     dead (event loop blocked) once it is unpacking
 *   image-worker.ts <store> gc
 */
import { ImageStore } from '../../src-ts/index.js';

const [dir, action, archive, hang] = process.argv.slice(2);
const store = await ImageStore.open(dir!, { lockStale: 2000 });
if (action === 'gc') {
  console.log(JSON.stringify(await store.gc()));
} else {
  let hung = false;
  const img = await store.import(archive!, {
    onProgress: (e) => {
      if (hang && !hung && e.type === 'bytes' && e.phase === 'unpack' && e.bytes > 1 << 20) {
        hung = true;
        process.stdout.write('unpacking\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000); // until killed
      }
    },
  });
  console.log(JSON.stringify({ digest: img.digest, ref: img.ref }));
}
