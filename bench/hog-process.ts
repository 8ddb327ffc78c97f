/**
 * A neighbour that keeps one core busy, for `npm run bench -- --hog`: a
 * busy loop that ends by itself after <max ms>, or as soon as the runner
 * that started it is gone. Usage: hog-process.js <max ms>.
 */
const end = Date.now() + Number(process.argv[2]);
const parent = process.ppid;

function parentAlive(): boolean {
  try {
    process.kill(parent, 0);
    return true;
  } catch {
    return false;
  }
}

let x = 0;
while (Date.now() < end && parentAlive()) {
  for (let i = 0; i < 1_000_000; i++) x = (x * 31 + i) | 0;
}
// Used, so that the loop is not optimised away.
process.exitCode = x === 0.5 ? 1 : 0;
