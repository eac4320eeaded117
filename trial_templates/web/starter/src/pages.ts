import { html, raw, type Html } from "./html";
import type { User } from "./auth";
import type { Note } from "./store";

function layout(title: string, content: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
<style>
body { font-family: sans-serif; max-width: 48rem; margin: 2rem auto; }
.note { border: 1px solid #ccc; border-radius: 4px; padding: 0.5rem 1rem; margin: 1rem 0; }
.meta { color: #666; font-size: 0.9em; }
</style>
</head>
<body>
${content}
</body>
</html>
`.toString();
}

/** A note's body as typed: its line breaks become <br>. */
function noteBody(note: Note): Html {
  return html`<div class="body">${raw(note.body.replace(/\r?\n/g, "<br>"))}</div>`;
}

export function boardPage(team: string, user: User, notes: Note[]): string {
  const items = notes.map(
    (note) => html`<article class="note" id="note-${note.id}">
<h2>${note.title}</h2>
${noteBody(note)}
<p class="meta">${note.author}, <time>${note.createdAt}</time></p>
</article>`,
  );
  return layout(
    `${team} board`,
    html`<h1>Team ${team}</h1>
<p class="meta">Signed in as ${user.name}</p>
<form id="new-note">
<p><input name="title" placeholder="Title" required maxlength="200"></p>
<p><textarea name="body" placeholder="Note" rows="4" cols="60"></textarea></p>
<p><button>Add note</button></p>
</form>
${items.length ? items : html`<p>No notes yet.</p>`}
<script>
document.getElementById("new-note").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch(location.pathname.replace(/^\\/teams\\//, "/api/teams/") + "/notes", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ title: form.get("title"), body: form.get("body") }),
  });
  if (response.ok) location.reload();
  else alert((await response.json()).error);
});
</script>`,
  );
}
