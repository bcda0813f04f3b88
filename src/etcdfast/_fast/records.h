/* Allocate an instance of a tuple subclass (our NamedTuple result types) with
 * n empty slots, for the caller to fill with PyTuple_SET_ITEM. This is what
 * tuple.__new__ does internally, minus building an intermediate tuple and the
 * Python-level __new__ call that a NamedTuple constructor costs. */
#ifndef ETCDFAST_RECORDS_H
#define ETCDFAST_RECORDS_H
#include <Python.h>
#include <string.h>

static inline PyObject *etcdfast_new_record(PyObject *type, Py_ssize_t n)
{
    PyTypeObject *t = (PyTypeObject *)type;
    return t->tp_alloc(t, n);
}

/* The same, for records that can never be part of a reference cycle: their
 * fields are bytes, ints, None, enum members or other such records, all set
 * once before the record is handed out. The cyclic GC need not track them,
 * and must not: a 100k-key range would otherwise allocate 100k tracked
 * objects and trigger ~140 collections while it is being decoded. (CPython
 * itself untracks such tuples, but only lazily, after paying for the
 * collections.) */
static inline PyObject *etcdfast_new_atomic_record(PyObject *type, Py_ssize_t n)
{
    PyTypeObject *t = (PyTypeObject *)type;
    PyObject *rec;
    if (t->tp_alloc == PyType_GenericAlloc && t->tp_itemsize == sizeof(PyObject *)
            && !t->tp_dictoffset && !t->tp_weaklistoffset) {
        /* What tp_alloc does, without tracking the record only to untrack it
         * again: a record allocated untracked, its slots zeroed so that it
         * can be freed at any point of its filling. */
        rec = (PyObject *)PyObject_GC_NewVar(PyTupleObject, t, n);
        if (rec != NULL)
            memset(((PyTupleObject *)rec)->ob_item, 0, (size_t)n * sizeof(PyObject *));
        return rec;
    }
    rec = etcdfast_new_record(type, n);
    if (rec != NULL && PyObject_GC_IsTracked(rec))
        PyObject_GC_UnTrack(rec);
    return rec;
}

/* Put a new reference into slot i of a record, releasing what was there: a
 * fresh record's slots are NULL; a recycled one's hold the previous fields. */
static inline void etcdfast_replace_item(PyObject *rec, Py_ssize_t i, PyObject *value)
{
    PyObject *old = PyTuple_GET_ITEM(rec, i);
    Py_INCREF(value);
    PyTuple_SET_ITEM(rec, i, value);
    Py_XDECREF(old);
}

/* Whether a record may be refilled in place: nobody but its iterator (one
 * reference) and the caller asking (`held` more) can see it. CPython's own
 * zip and enumerate recycle their result tuples the same way. Not from 3.14
 * on, where tuples cache their hash: a record hashed while it was someone's
 * would keep that hash. */
static inline int etcdfast_spare_record(PyObject *rec, Py_ssize_t held)
{
#if PY_VERSION_HEX < 0x030E0000
    return Py_REFCNT(rec) == 1 + held;
#else
    (void)rec;
    (void)held;
    return 0;
#endif
}

#endif
