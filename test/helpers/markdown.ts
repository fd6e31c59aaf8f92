// The user docs (README.md and docs/*.md) as the tests read them: their fenced code blocks, their
// relative links and their headings' anchors. Hand-written rather than a Markdown library: the
// docs use a small, regular subset (fences at any indent, inline links, ATX headings), and a
// parser would be a new dependency for these few lines.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..", "..");

/** The user docs, as paths from the repository's root: the README first, then docs/ by name. */
export function docPages(): string[] {
  const pages = readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`);
  return ["README.md", ...pages];
}

export const readPage = (page: string) => readFileSync(join(ROOT, page), "utf8");

export interface Fence {
  /** The info string's first word (`sh`, `json`...), "" when there is none. */
  lang: string;
  /** The block's text, its indent removed, ending with a newline. */
  body: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** Whether only blank lines separate it from the fence before it. */
  followsFence: boolean;
}

/** Every fenced code block of a page, in order. */
export function fences(markdown: string): Fence[] {
  const out: Fence[] = [];
  const lines = markdown.split("\n");
  let lastClose = -2;
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i]?.match(/^( *)(`{3,})\s*([^`\s]*)/);
    if (!open) continue;
    const [, indent = "", ticks = "```", lang = ""] = open;
    const close = new RegExp(`^ *${ticks}\\s*$`);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !close.test(lines[i] ?? ""); i++) {
      const line = lines[i] ?? "";
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart());
    }
    const between = lines.slice(lastClose + 1, start);
    out.push({
      lang,
      body: body.map((l) => `${l}\n`).join(""),
      line: start + 1,
      followsFence: lastClose >= 0 && between.every((l) => l.trim() === ""),
    });
    lastClose = i;
  }
  return out;
}

/** The page's lines, those of fenced blocks (fences included) as "". */
function outsideFences(markdown: string): string[] {
  let inFence: string | undefined;
  return markdown.split("\n").map((line) => {
    const fence = line.match(/^ *(`{3,})/);
    if (fence && (inFence === undefined || fence[1] === inFence)) {
      inFence = inFence === undefined ? fence[1] : undefined;
      return "";
    }
    return inFence === undefined ? line : "";
  });
}

/** Every link target of the page (inline links and images), with its 1-based line. */
export function links(markdown: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  // Joined again so a link's text may wrap onto the next line.
  const text = outsideFences(markdown)
    .map((line) => line.replace(/`[^`]*`/g, "``"))
    .join("\n");
  for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const line = text.slice(0, match.index).split("\n").length;
    if (match[1]) out.push({ target: match[1], line });
  }
  return out;
}

/**
 * GitHub's anchor for a heading: lower case, punctuation dropped (`-` and `_` kept), each space a
 * `-`; a repeated heading gets `-1`, `-2`... (as github-slugger does).
 */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of headings(markdown)) {
    const base = line
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/`/g, "")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\- _]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function headings(markdown: string): string[] {
  return outsideFences(markdown).flatMap((line) => {
    const heading = line.match(/^#{1,6} +(.*?)\s*#*\s*$/);
    return heading?.[1] ? [heading[1]] : [];
  });
}
