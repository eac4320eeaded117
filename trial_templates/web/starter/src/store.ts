// Notes live in memory: the board is a prototype; a restart empties it.

export interface Note {
  id: string;
  team: string;
  title: string;
  body: string;
  author: string;
  createdAt: string;
}

export class Store {
  private notes: Note[] = [];
  private nextId = 1;

  constructor(private readonly now: () => Date = () => new Date()) {}

  addNote(team: string, author: string, title: string, body: string): Note {
    const note: Note = { id: String(this.nextId++), team, title, body, author, createdAt: this.now().toISOString() };
    this.notes.push(note);
    return note;
  }

  /** The team's notes, newest first. */
  notesOf(team: string): Note[] {
    return this.notes.filter((n) => n.team === team).reverse();
  }

  /** A note by id (ids are unique across teams). */
  note(id: string): Note | undefined {
    return this.notes.find((n) => n.id === id);
  }
}
