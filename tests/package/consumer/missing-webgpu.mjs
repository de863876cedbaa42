// Run after the test hid node_modules/webgpu: init() names the command that installs Dawn, and
// 'auto' falls back to the CPU saying why, once however often it is called.
import { init } from 'backlight';

let message = '';
try {
  await init();
} catch (e) {
  message = e.message;
}
const b = await init({ backend: 'auto' });
await init({ backend: 'auto' });
console.log(JSON.stringify({ message, backend: b.info.backend }));
