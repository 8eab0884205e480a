// The phone page: the form and the test hook (window.sipsteerPhone) over one Phone.
import {
  Phone,
  type CallState,
  type ChosenProxy,
  type InboundBytes,
  type SessionSdp,
} from "./phone.js";

/** What the browser tests drive (test/e2e/browser-phone.test.ts). */
export interface PhoneHook {
  register(user: string, password: string): Promise<ChosenProxy>;
  call(target: string): Promise<void>;
  answer(): Promise<void>;
  reject(): void;
  hangup(): void;
  state(): CallState;
  /** JsSIP's cause of the last end ("Not Acceptable Here", "Terminated" …). */
  cause(): string;
  proxy(): ChosenProxy | undefined;
  stats(): Promise<InboundBytes>;
  sdp(): SessionSdp;
}

declare global {
  interface Window {
    sipsteerPhone: PhoneHook;
  }
}

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} missing from the page`);
  return found as T;
}

const query = new URLSearchParams(location.search);
const user = element<HTMLInputElement>("user");
const password = element<HTMLInputElement>("password");
const domain = element<HTMLInputElement>("domain");
const target = element<HTMLInputElement>("target");
const buttons = {
  register: element<HTMLButtonElement>("register"),
  call: element<HTMLButtonElement>("call"),
  answer: element<HTMLButtonElement>("answer"),
  reject: element<HTMLButtonElement>("reject"),
  hangup: element<HTMLButtonElement>("hangup"),
};
const registration = element<HTMLElement>("registration");
const callState = element<HTMLElement>("call-state");
const errors = element<HTMLElement>("error");

user.value = query.get("user") ?? "";
domain.value = query.get("domain") ?? "sipsteer.test";
target.value = query.get("target") ?? "";

const phone = new Phone({
  localVideo: element<HTMLVideoElement>("local"),
  remoteVideo: element<HTMLVideoElement>("remote"),
  changed: render,
});

function render(): void {
  const proxy = phone.proxy;
  registration.textContent =
    proxy === undefined
      ? "not registered"
      : `${phone.registered ? "registered on" : "registering on"} ${proxy.proxy} (${proxy.uri})`;
  const state = phone.state;
  const detail = phone.cause === "" ? "" : ` (${phone.cause})`;
  const peer = phone.peer === "" || state === "idle" ? "" : ` ${phone.peer}`;
  callState.textContent = `${state}${peer}${detail}`;
  document.body.dataset.state = state;
  const inCall = state === "calling" || state === "ringing" || state === "connected";
  buttons.call.disabled = !phone.registered || inCall || state === "incoming";
  buttons.answer.disabled = state !== "incoming";
  buttons.reject.disabled = state !== "incoming";
  buttons.hangup.disabled = !inCall;
}

/** Runs a button's action, showing its failure on the page. */
function act(run: () => Promise<unknown> | void): void {
  errors.textContent = "";
  Promise.resolve()
    .then(run)
    .catch((e: unknown) => {
      errors.textContent = e instanceof Error ? e.message : String(e);
    });
}

// Enter in a field must not submit (and reload) the page.
for (const form of document.querySelectorAll("form"))
  form.addEventListener("submit", (e) => e.preventDefault());
buttons.register.addEventListener("click", () =>
  act(() => phone.register(user.value, password.value, domain.value)),
);
buttons.call.addEventListener("click", () => act(() => phone.call(target.value)));
buttons.answer.addEventListener("click", () => act(() => phone.answer()));
buttons.reject.addEventListener("click", () => act(() => phone.reject()));
buttons.hangup.addEventListener("click", () => act(() => phone.hangup()));

window.sipsteerPhone = {
  register: (u, p) => {
    user.value = u;
    password.value = p;
    return phone.register(u, p, domain.value);
  },
  call: (to) => {
    target.value = to;
    return phone.call(to);
  },
  answer: () => phone.answer(),
  reject: () => phone.reject(),
  hangup: () => phone.hangup(),
  state: () => phone.state,
  cause: () => phone.cause,
  proxy: () => phone.proxy,
  stats: () => phone.stats(),
  sdp: () => phone.sdp,
};
render();
